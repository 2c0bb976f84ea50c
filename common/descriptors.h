/*
 * descriptors: the FileDescriptorSet that protoc wrote from proto/ at build
 * time and the build embedded in the binary, unpacked, and the look-ups
 * server reflection needs: a file by name, the file that defines a symbol,
 * and a file's descriptor together with those of everything it imports.
 */
#ifndef TSR_DESCRIPTORS_H
#define TSR_DESCRIPTORS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "google/protobuf/descriptor.pb-c.h"

#define DESCRIPTORS_FILES_MAX 64 /* files the embedded set may hold */

/*
 * The serialized FileDescriptorSet, defined by the binary that links this:
 * proto/meson.build embeds the hub's (every file) or the spoke's (its own
 * protocol only) as hub_descriptors_dep or spoke_descriptors_dep.
 */
extern const uint8_t embedded_descriptors[];
extern const size_t embedded_descriptors_len;

struct descriptors {
	Google__Protobuf__FileDescriptorSet *set;
};

/* A file's serialized FileDescriptorProto and those of its imports. */
struct descriptors_closure {
	ProtobufCBinaryData files[DESCRIPTORS_FILES_MAX];
	size_t n;
};

/* Unpacks the embedded set into d; INTERNAL if the build embedded junk. */
int descriptors_open(struct descriptors *d, struct tsr_err *err);
void descriptors_close(struct descriptors *d);

/* The index of the file named name ("tessera/v1/hub.proto"); NOT_FOUND. */
int descriptors_file_by_name(const struct descriptors *d, const char *name, size_t *file,
			     struct tsr_err *err);
/* The index of the file that defines a fully qualified symbol: a service,
 * a method ("pkg.Service.Method"), a message or an enum, nested ones
 * included ("pkg.Outer.Inner"); NOT_FOUND for anything else. */
int descriptors_file_by_symbol(const struct descriptors *d, const char *symbol, size_t *file,
			       struct tsr_err *err);

/* Fills out with file's descriptor first, then those of every file it
 * imports, directly or not, each once. Free out with
 * descriptors_closure_free(), after a failure too. */
int descriptors_closure(const struct descriptors *d, size_t file, struct descriptors_closure *out,
			struct tsr_err *err);
void descriptors_closure_free(struct descriptors_closure *c);

#endif
