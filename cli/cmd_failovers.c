/* cmd_failovers.c: "ombractl volume failovers NAME": the region failovers
 * of a volume (AdminService.ListFailovers), one row per promoted shadow,
 * oldest first, with the data lost (RPO) as the metad leader computed it
 * when it promoted (docs/metad.md "Region failover").
 *
 * Failure: as every command (command.h): usage errors exit 2, an unknown
 * volume or an unreachable cluster exits 1 with the server's message. */
#include <inttypes.h>
#include <stdio.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "table.h"

static int cmd_failovers_print(const struct cli_run *run,
			       const ProtobufCMessage *resp)
{
	static const char *const headers[] = {
	    "WHEN",	 "SEGMENT",    "OLD PRIMARY",	"NEW PRIMARY", "EPOCH",
	    "SHADOW AT", "LAST KNOWN", "LOST VERSIONS", "LOST TIME",
	};
	const Ombra__V1__ListFailoversResponse *r = (const void *)resp;
	char a[FMT_LEN];
	struct table t;

	(void)run;
	table_init(&t, 9, headers,
		   (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 7) |
		       (1u << 8));
	for (size_t i = 0; i < r->n_events; i++) {
		const Ombra__V1__FailoverEvent *e = r->events[i];

		table_cell(&t, fmt_time_ms(e->unix_ms, a, sizeof(a)));
		table_cellf(&t, "%" PRIu64, e->segment_index);
		table_cellf(&t, "%" PRIu64, e->old_primary_node_id);
		table_cellf(&t, "%" PRIu64, e->new_primary_node_id);
		table_cellf(&t, "%" PRIu64, e->lease_epoch);
		table_cell(&t, fmt_version(e->shadow_version, a, sizeof(a)));
		table_cell(&t, fmt_version(e->known_version, a, sizeof(a)));
		table_cellf(&t, "%" PRIu64, e->lost_versions);
		table_cell(&t, fmt_duration_ms(e->lost_ms, a, sizeof(a)));
	}
	return cli_print_table(&t, "failover");
}

static const struct cli_arg cmd_failovers_args[] = {
    {.name = "NAME", .value = {.kind = CLI_VALUE_STRING, .field = "volume"}},
    {0},
};

const struct cli_command cmd_volume_failovers = {
    .name = "failovers",
    .method = "ListFailovers",
    .request = &ombra__v1__list_failovers_request__descriptor,
    .args = cmd_failovers_args,
    .print = cmd_failovers_print,
};
