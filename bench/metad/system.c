/* system.c: the table of systems ombra-bench-metad can load, the record
 * both systems store, and the benchmark's clock.
 *
 * Failure: bench_record_encode() returns NULL only when out of memory;
 * bench_system_find() returns NULL for an unknown name. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "common.pb-c.h"

const struct bench_system *bench_system_find(const char *name)
{
	static const struct bench_system *const all[] = {&bench_metad,
							 &bench_etcd};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return NULL;
}

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint8_t *bench_record_encode(const char *name, uint64_t seq, size_t *len)
{
	Ombra__V1__Volume vol = OMBRA__V1__VOLUME__INIT;
	struct timespec now;
	uint8_t *buf;

	clock_gettime(CLOCK_REALTIME, &now);
	/* The same fields metad's state machine fills for CreateVolume. */
	vol.id = seq + 1;
	vol.name = (char *)name;
	vol.size_bytes = BENCH_VOLUME_BYTES;
	vol.segment_size_bytes = BENCH_SEGMENT_BYTES;
	vol.block_size_bytes = 4096;
	vol.home_region = (char *)BENCH_REGION;
	vol.replicas = 2;
	vol.state = OMBRA__V1__VOLUME_STATE__VOLUME_ACTIVE;
	vol.created_unix_ms =
	    (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	vol.modified_index = seq + 1;
	vol.segment_count = BENCH_VOLUME_BYTES / BENCH_SEGMENT_BYTES;
	*len = protobuf_c_message_get_packed_size(&vol.base);
	buf = malloc(*len ? *len : 1);
	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(&vol.base, buf);
	return buf;
}
