# proto/: .proto contracts compiled with protoc-c into the build tree.
PROTO_FILES = proto/common.proto proto/volume.proto proto/admin.proto \
	proto/meta.proto proto/store.proto
PROTO_GEN_C = $(PROTO_FILES:.proto=.pb-c.c)
PROTO_GEN_H = $(PROTO_FILES:.proto=.pb-c.h)
EXTRA_DIST += $(PROTO_FILES)
BUILT_SOURCES += $(PROTO_GEN_H) $(PROTO_GEN_C)
CLEANFILES += $(PROTO_GEN_H) $(PROTO_GEN_C) proto/.stamp

proto/.stamp: $(PROTO_FILES)
	@$(MKDIR_P) proto
	$(AM_V_GEN)$(PROTOC_C) --proto_path=$(srcdir)/proto --c_out=proto \
		$(addprefix $(srcdir)/,$(PROTO_FILES)) && touch $@
$(PROTO_GEN_C) $(PROTO_GEN_H): proto/.stamp
