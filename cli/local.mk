# cli/: ombractl, the admin CLI.
bin_PROGRAMS += cli/ombractl
cli_ombractl_SOURCES = cli/ombractl.c
cli_ombractl_LDADD = $(OMBRA_BASE_LIBS)
