# tools/netdelay: ombra-netdelay, the WAN delay of the netns testbed
# (deploy/testbed/ombra-testbed, docs/testbed.md).  Built only when
# configure found libnetfilter_queue (HAVE_NFQ; Debian:
# libnetfilter-queue-dev).  Its scheduler (delayq.c) has no netfilter
# dependency and is unit tested on a virtual clock in every build.
if HAVE_NFQ
bin_PROGRAMS += tools/netdelay/ombra-netdelay
tools_netdelay_ombra_netdelay_SOURCES = \
	tools/netdelay/ombra-netdelay.c \
	tools/netdelay/delayq.c \
	tools/netdelay/delayq.h
tools_netdelay_ombra_netdelay_CFLAGS = $(AM_CFLAGS) $(NFQ_CFLAGS)
tools_netdelay_ombra_netdelay_LDADD = $(NFQ_LIBS)
else
EXTRA_DIST += tools/netdelay/ombra-netdelay.c
endif

check_PROGRAMS += tests/unit/test_delayq
TESTS += tests/unit/test_delayq
tests_unit_test_delayq_SOURCES = tests/unit/test_delayq.c \
	tools/netdelay/delayq.c tools/netdelay/delayq.h
tests_unit_test_delayq_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_delayq_LDADD = $(CMOCKA_LIBS)
