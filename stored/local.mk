# stored/: storage node.  For now the segment store library (data files,
# LMDB index, checksums); the daemon, its RPC service and replication come
# later and link against libsegstore.a.
noinst_LIBRARIES += libsegstore.a
libsegstore_a_SOURCES = \
	stored/crc.c stored/crc.h \
	stored/segstore.h stored/segstore_internal.h \
	stored/segstore.c stored/segstore_record.c stored/segstore_index.c \
	stored/segstore_tier.c stored/segstore_file.c stored/segstore_read.c \
	stored/segstore_scrub.c stored/segstore_write.c stored/segstore_apply.c \
	stored/segstore_admin.c stored/segstore_commit.c \
	stored/segstore_nowait.c
# What a program using the segment store links, after libsegstore.a's own
# users and before libombra.a (error messages).
SEGSTORE_LIBS = libsegstore.a $(LMDB_LIBS) $(ISAL_LIBS) -lpthread
