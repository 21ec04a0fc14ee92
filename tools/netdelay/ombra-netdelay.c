/* ombra-netdelay: add a one-way delay to the packets of NFQUEUE queues.
 *
 * What it is for: the netns testbed (deploy/testbed/ombra-testbed,
 * docs/testbed.md) emulates WAN latency between regions on a kernel without
 * sch_netem.  iptables rules in a region's network namespace send the
 * packets arriving from another region to an NFQUEUE queue (one queue
 * number per source region; the testbed queues on INPUT because packets
 * held on OUTPUT stay charged to the sending TCP socket and throttle it);
 * this program, running in the same namespace, binds
 * those queues, holds every packet for its queue's delay and then gives the
 * kernel the NF_ACCEPT verdict.  Packets of one queue leave in the order
 * they arrived (constant delay per queue, FIFO: delayq.h).
 *
 *   ombra-netdelay --queue 2=25 --queue 3=40 [--max-held N]
 *
 * API: libnetfilter_queue, https://netfilter.org/projects/
 * libnetfilter_queue/doxygen/html/ (nfq_open, nfq_create_queue,
 * nfq_set_mode, nfq_set_queue_maxlen, nfq_handle_packet, nfq_set_verdict)
 * and the kernel's uapi linux/netfilter/nfnetlink_queue.h.  Only packet
 * metadata is copied to user space (NFQNL_COPY_META): the packet stays in
 * the kernel until its verdict, so a held packet costs 16 bytes here.
 *
 * Time: CLOCK_MONOTONIC in ns; the loop sleeps in ppoll() until the next
 * deadline or the next packet, with SIGTERM/SIGINT/SIGUSR1 blocked except
 * inside ppoll() (no race between the flag test and the sleep).
 *
 * Memory is bounded: each queue holds at most --max-held packets (default
 * 16384); the kernel queue is given the same maximum.  A packet beyond it
 * gets NF_DROP and is counted (like a full router buffer); the kernel
 * itself drops and counts what overflows its queue or our socket buffer
 * (see /proc/net/netfilter/nfnetlink_queue).
 *
 * How it fails: bad arguments print the reason and the usage, exit 2;
 * a queue that cannot be bound (not root / no CAP_NET_ADMIN, module
 * nfnetlink_queue missing, queue already bound by another process) prints
 * which and exits 1.  SIGTERM or SIGINT: every held packet is accepted at
 * once, the queues are unbound, per-queue counters are printed, exit 0.
 * SIGUSR1 prints the counters and goes on.  A failed verdict is counted
 * and logged (the kernel drops that packet when the queue is unbound). */
#include "delayq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NETDELAY_MAX_QUEUES 64
#define NETDELAY_DEFAULT_MAX_HELD 16384
#define NETDELAY_MAX_DELAY_MS 60000.0
#define NETDELAY_RCVBUF (8u << 20) /* bytes of netlink socket buffer */

struct netdelay_queue_arg {
	struct netdelay *nd;
	size_t index; /* in nd->dq */
};

struct netdelay {
	struct nfq_handle *h;
	struct nfq_q_handle *qh[NETDELAY_MAX_QUEUES];
	struct netdelay_queue_arg qarg[NETDELAY_MAX_QUEUES];
	uint16_t num[NETDELAY_MAX_QUEUES]; /* NFQUEUE queue numbers */
	double delay_ms[NETDELAY_MAX_QUEUES];
	size_t nqueues;
	size_t max_held;
	struct delayq dq;
	uint64_t verdict_errors;
	uint64_t recv_overruns; /* ENOBUFS: the kernel dropped messages */
};

static volatile sig_atomic_t netdelay_stop;
static volatile sig_atomic_t netdelay_report;

static void netdelay_on_signal(int sig)
{
	if (sig == SIGUSR1)
		netdelay_report = 1;
	else
		netdelay_stop = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ombra-netdelay --queue NUM=MS [--queue NUM=MS ...] "
	    "[--max-held N]\n"
	    "\n"
	    "Hold every packet of NFQUEUE queue NUM for MS milliseconds "
	    "(decimals allowed,\n"
	    "0..%.0f), then accept it; packets of a queue keep their "
	    "order.  Send packets\n"
	    "to a queue with e.g.\n"
	    "  iptables -A INPUT -s 10.77.2.0/24 -j NFQUEUE --queue-num 2\n"
	    "in the same network namespace.  Needs CAP_NET_ADMIN and the "
	    "nfnetlink_queue\n"
	    "kernel module.\n"
	    "\n"
	    "  --queue NUM=MS   queue number 0..65535 and its one-way delay "
	    "(up to %d queues)\n"
	    "  --max-held N     packets held per queue before new ones are "
	    "dropped\n"
	    "                   (default %d; memory 16 bytes per packet)\n"
	    "  --help           this text\n"
	    "\n"
	    "SIGTERM/SIGINT: accept every held packet, print the counters, "
	    "exit 0.\n"
	    "SIGUSR1: print the counters (stderr).\n",
	    NETDELAY_MAX_DELAY_MS, NETDELAY_MAX_QUEUES,
	    NETDELAY_DEFAULT_MAX_HELD);
}

/* Parse "NUM=MS" into nd's next queue; returns 0 or prints why and -1. */
static int parse_queue(struct netdelay *nd, const char *s)
{
	char *end;
	unsigned long num;
	double ms;

	if (nd->nqueues == NETDELAY_MAX_QUEUES) {
		fprintf(stderr, "ombra-netdelay: more than %d --queue\n",
			NETDELAY_MAX_QUEUES);
		return -1;
	}
	errno = 0;
	num = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '=' || num > 65535) {
		fprintf(stderr,
			"ombra-netdelay: --queue %s: expected NUM=MS with NUM "
			"0..65535\n",
			s);
		return -1;
	}
	s = end + 1;
	errno = 0;
	ms = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(ms >= 0.0) ||
	    ms > NETDELAY_MAX_DELAY_MS) {
		fprintf(stderr,
			"ombra-netdelay: --queue %lu=%s: delay must be 0..%.0f "
			"ms\n",
			num, s, NETDELAY_MAX_DELAY_MS);
		return -1;
	}
	for (size_t i = 0; i < nd->nqueues; i++) {
		if (nd->num[i] == num) {
			fprintf(stderr,
				"ombra-netdelay: queue %lu given twice\n", num);
			return -1;
		}
	}
	nd->num[nd->nqueues] = (uint16_t)num;
	nd->delay_ms[nd->nqueues] = ms;
	nd->nqueues++;
	return 0;
}

static int parse_args(struct netdelay *nd, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"queue", required_argument, NULL, 'q'},
	    {"max-held", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	nd->max_held = NETDELAY_DEFAULT_MAX_HELD;
	while ((c = getopt_long(argc, argv, "q:m:h", opts, NULL)) != -1) {
		char *end;
		unsigned long v;

		switch (c) {
		case 'q':
			if (parse_queue(nd, optarg) != 0)
				return 2;
			break;
		case 'm':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v == 0 || v > (1ul << 24)) {
				fprintf(stderr,
					"ombra-netdelay: --max-held %s: "
					"expected 1..%lu\n",
					optarg, 1ul << 24);
				return 2;
			}
			nd->max_held = v;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ombra-netdelay: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (nd->nqueues == 0) {
		fprintf(stderr, "ombra-netdelay: no --queue given\n");
		usage(stderr);
		return 2;
	}
	return 0;
}

static void print_stats(const struct netdelay *nd, const char *when)
{
	for (size_t i = 0; i < nd->nqueues; i++) {
		const struct delayq_stats *s = &nd->dq.queues[i].stats;
		fprintf(stderr,
			"ombra-netdelay: %s: queue %u delay %.3f ms: "
			"delayed %llu, accepted %llu, dropped %llu "
			"(over --max-held %zu), held %zu now, %zu at most\n",
			when, nd->num[i], nd->delay_ms[i],
			(unsigned long long)s->pushed,
			(unsigned long long)s->released,
			(unsigned long long)s->dropped, nd->max_held,
			delayq_held(&nd->dq, i), s->held_max);
	}
	fprintf(stderr,
		"ombra-netdelay: %s: verdict errors %llu, netlink overruns "
		"%llu\n",
		when, (unsigned long long)nd->verdict_errors,
		(unsigned long long)nd->recv_overruns);
}

static void verdict(struct netdelay *nd, size_t q, uint32_t id, uint32_t what)
{
	if (nfq_set_verdict(nd->qh[q], id, what, 0, NULL) < 0) {
		if (nd->verdict_errors++ == 0)
			fprintf(stderr,
				"ombra-netdelay: verdict for packet %u of "
				"queue %u: %s (further errors only "
				"counted)\n",
				id, nd->num[q], strerror(errno));
	}
}

static int on_release(size_t q, uint32_t id, void *arg)
{
	verdict(arg, q, id, NF_ACCEPT);
	return 0;
}

/* nfq callback: one packet arrived on a queue; hold it or drop it. */
static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg,
		     struct nfq_data *nfa, void *data)
{
	struct netdelay_queue_arg *qa = data;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	uint32_t id;

	if (ph == NULL)
		return 0;
	id = ntohl(ph->packet_id);
	if (delayq_push(&qa->nd->dq, qa->index, id, mono_ns()) != DELAYQ_OK)
		verdict(qa->nd, qa->index, id, NF_DROP);
	return 0;
}

/* Bind every queue; prints the reason and returns -1 on failure. */
static int netdelay_open(struct netdelay *nd)
{
	uint64_t delays[NETDELAY_MAX_QUEUES];

	for (size_t i = 0; i < nd->nqueues; i++)
		delays[i] = (uint64_t)(nd->delay_ms[i] * 1e6 + 0.5);
	if (delayq_init(&nd->dq, delays, nd->nqueues, nd->max_held) !=
	    DELAYQ_OK) {
		fprintf(stderr,
			"ombra-netdelay: out of memory for %zu queues of %zu "
			"packets\n",
			nd->nqueues, nd->max_held);
		return -1;
	}
	nd->h = nfq_open();
	if (nd->h == NULL) {
		fprintf(stderr,
			"ombra-netdelay: nfq_open(): %s (needs CAP_NET_ADMIN "
			"and the nfnetlink_queue module: modprobe "
			"nfnetlink_queue)\n",
			strerror(errno));
		goto err;
	}
	for (size_t i = 0; i < nd->nqueues; i++) {
		nd->qarg[i].nd = nd;
		nd->qarg[i].index = i;
		nd->qh[i] = nfq_create_queue(nd->h, nd->num[i], on_packet,
					     &nd->qarg[i]);
		if (nd->qh[i] == NULL) {
			fprintf(stderr,
				"ombra-netdelay: bind queue %u: %s (not root, "
				"or another process already serves this queue "
				"in this network namespace)\n",
				nd->num[i], strerror(errno));
			goto err;
		}
		if (nfq_set_mode(nd->qh[i], NFQNL_COPY_META, 0) < 0 ||
		    nfq_set_queue_maxlen(nd->qh[i], (uint32_t)nd->max_held) <
			0) {
			fprintf(stderr,
				"ombra-netdelay: configure queue %u: %s\n",
				nd->num[i], strerror(errno));
			goto err;
		}
	}
	nfnl_rcvbufsiz(nfq_nfnlh(nd->h), NETDELAY_RCVBUF);
	if (fcntl(nfq_fd(nd->h), F_SETFL,
		  fcntl(nfq_fd(nd->h), F_GETFL) | O_NONBLOCK) < 0) {
		fprintf(stderr, "ombra-netdelay: O_NONBLOCK: %s\n",
			strerror(errno));
		goto err;
	}
	return 0;
err:
	return -1;
}

/* Unbind the queues (after every held packet got its verdict) and free. */
static void netdelay_close(struct netdelay *nd)
{
	for (size_t i = 0; i < nd->nqueues; i++) {
		if (nd->qh[i] != NULL)
			nfq_destroy_queue(nd->qh[i]);
		nd->qh[i] = NULL;
	}
	if (nd->h != NULL)
		nfq_close(nd->h);
	nd->h = NULL;
	if (nd->dq.queues != NULL)
		delayq_close(&nd->dq);
}

/* Read every pending netlink message; returns -1 on a fatal error. */
static int drain_socket(struct netdelay *nd)
{
	char buf[65536] __attribute__((aligned));
	int fd = nfq_fd(nd->h);

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			nfq_handle_packet(nd->h, buf, (int)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			nd->recv_overruns++;
			continue;
		}
		fprintf(stderr, "ombra-netdelay: recv: %s\n",
			n == 0 ? "netlink socket closed" : strerror(errno));
		return -1;
	}
}

static int run(struct netdelay *nd, const sigset_t *unblocked)
{
	struct pollfd pfd = {.fd = nfq_fd(nd->h), .events = POLLIN};

	while (!netdelay_stop) {
		uint64_t now = mono_ns(), due;
		struct timespec ts, *tsp = NULL;

		delayq_release(&nd->dq, now, on_release, nd);
		due = delayq_next_due(&nd->dq);
		if (due != DELAYQ_NEVER) {
			uint64_t wait = due > now ? due - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tsp = &ts;
		}
		if (ppoll(&pfd, 1, tsp, unblocked) < 0) {
			if (errno != EINTR) {
				fprintf(stderr, "ombra-netdelay: ppoll: %s\n",
					strerror(errno));
				return -1;
			}
		} else if ((pfd.revents & POLLIN) && drain_socket(nd) != 0) {
			return -1;
		}
		if (netdelay_report) {
			netdelay_report = 0;
			print_stats(nd, "SIGUSR1");
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct netdelay nd;
	struct sigaction sa;
	sigset_t block, unblocked;
	int rc;

	memset(&nd, 0, sizeof(nd));
	rc = parse_args(&nd, argc, argv);
	if (rc != 0)
		return rc == 1 ? 0 : 2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = netdelay_on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &block, &unblocked) != 0 ||
	    sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGUSR1, &sa, NULL) != 0) {
		fprintf(stderr, "ombra-netdelay: signals: %s\n",
			strerror(errno));
		return 1;
	}
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGUSR1);

	if (netdelay_open(&nd) != 0) {
		netdelay_close(&nd);
		return 1;
	}
	for (size_t i = 0; i < nd.nqueues; i++)
		fprintf(stderr, "ombra-netdelay: queue %u: %.3f ms\n",
			nd.num[i], nd.delay_ms[i]);
	rc = run(&nd, &unblocked);
	/* accept everything still held, in order, before unbinding */
	delayq_release(&nd.dq, DELAYQ_NEVER - 1, on_release, &nd);
	print_stats(&nd, rc == 0 ? "exit" : "error exit");
	netdelay_close(&nd);
	return rc == 0 ? 0 : 1;
}
