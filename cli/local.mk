# cli/: ombractl, the admin CLI.
bin_PROGRAMS += cli/ombractl
cli_ombractl_SOURCES = \
	cli/ombractl.c cli/cli.c cli/cli.h cli/globals.c cli/output.c \
	cli/command.c cli/command.h cli/value.c cli/value.h cli/cmd.h \
	cli/cmd_cluster.c cli/cmd_status.c cli/status_probe.c cli/status.h \
	cli/cmd_region.c cli/cmd_node.c cli/cmd_volume.c cli/cmd_shards.c \
	cli/cmd_failovers.c cli/cmd_policy.c cli/cmd_prefetch.c \
	cli/seginfo.c cli/seginfo.h \
	cli/parse.c cli/parse.h cli/format.c cli/format.h \
	cli/table.c cli/table.h cli/tlscheck.c cli/tlscheck.h
cli_ombractl_LDADD = $(OMBRA_BASE_LIBS)
