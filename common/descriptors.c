/*
 * descriptors: look-ups in the embedded FileDescriptorSet. Names are
 * matched one dotted component at a time, so "tessera.v1.Hub" never
 * matches a "tessera.v1.HubX" and a nested name is found only inside its
 * parent.
 */
#include "descriptors.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

int descriptors_open(struct descriptors *d, struct tsr_err *err)
{
	d->set = google__protobuf__file_descriptor_set__unpack(NULL, embedded_descriptors_len,
							       embedded_descriptors);
	if (d->set == NULL)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "embedded descriptors are malformed");
	if (d->set->n_file > DESCRIPTORS_FILES_MAX) {
		descriptors_close(d);
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "over %d embedded descriptor files",
				   DESCRIPTORS_FILES_MAX);
	}
	return 0;
}

void descriptors_close(struct descriptors *d)
{
	if (d->set != NULL)
		google__protobuf__file_descriptor_set__free_unpacked(d->set, NULL);
	d->set = NULL;
}

int descriptors_file_by_name(const struct descriptors *d, const char *name, size_t *file,
			     struct tsr_err *err)
{
	for (size_t i = 0; i < d->set->n_file; i++) {
		const char *fname = d->set->file[i]->name;

		if (fname != NULL && strcmp(fname, name) == 0) {
			*file = i;
			return 0;
		}
	}
	return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "no file %s", name);
}

/*
 * When sym starts with the component(s) name, returns what follows: ""
 * for sym == name, the rest after the dot otherwise. NULL when it does not.
 * Names are optional in descriptor.proto, so a missing one matches nothing.
 */
static const char *descriptors_strip(const char *sym, const char *name)
{
	size_t n;

	if (name == NULL || name[0] == '\0')
		return NULL;
	n = strlen(name);
	if (strncmp(sym, name, n) != 0)
		return NULL;
	if (sym[n] == '\0')
		return sym + n;
	if (sym[n] == '.' && sym[n + 1] != '\0')
		return sym + n + 1;
	return NULL;
}

static bool descriptors_is(const char *sym, const char *name)
{
	const char *rest = descriptors_strip(sym, name);

	return rest != NULL && rest[0] == '\0';
}

/* Every step down consumes a component of sym, which bounds the depth. */
static bool descriptors_in_message(const Google__Protobuf__DescriptorProto *m, const char *sym)
{
	const char *rest = descriptors_strip(sym, m->name);

	if (rest == NULL)
		return false;
	if (rest[0] == '\0')
		return true;
	for (size_t i = 0; i < m->n_nested_type; i++)
		if (descriptors_in_message(m->nested_type[i], rest))
			return true;
	for (size_t i = 0; i < m->n_enum_type; i++)
		if (descriptors_is(rest, m->enum_type[i]->name))
			return true;
	return false;
}

static bool descriptors_in_service(const Google__Protobuf__ServiceDescriptorProto *s,
				   const char *sym)
{
	const char *rest = descriptors_strip(sym, s->name);

	if (rest == NULL)
		return false;
	if (rest[0] == '\0')
		return true;
	for (size_t i = 0; i < s->n_method; i++)
		if (descriptors_is(rest, s->method[i]->name))
			return true;
	return false;
}

static bool descriptors_in_file(const Google__Protobuf__FileDescriptorProto *f, const char *sym)
{
	const char *rest = sym;

	if (f->package != NULL && f->package[0] != '\0') {
		rest = descriptors_strip(sym, f->package);
		if (rest == NULL || rest[0] == '\0')
			return false;
	}
	for (size_t i = 0; i < f->n_message_type; i++)
		if (descriptors_in_message(f->message_type[i], rest))
			return true;
	for (size_t i = 0; i < f->n_enum_type; i++)
		if (descriptors_is(rest, f->enum_type[i]->name))
			return true;
	for (size_t i = 0; i < f->n_service; i++)
		if (descriptors_in_service(f->service[i], rest))
			return true;
	return false;
}

int descriptors_file_by_symbol(const struct descriptors *d, const char *symbol, size_t *file,
			       struct tsr_err *err)
{
	for (size_t i = 0; i < d->set->n_file; i++) {
		if (descriptors_in_file(d->set->file[i], symbol)) {
			*file = i;
			return 0;
		}
	}
	return tsr_err_set(err, GRPC_STATUS_NOT_FOUND, "no symbol %s", symbol);
}

int descriptors_closure(const struct descriptors *d, size_t file, struct descriptors_closure *out,
			struct tsr_err *err)
{
	size_t order[DESCRIPTORS_FILES_MAX], n = 0, dep;
	bool seen[DESCRIPTORS_FILES_MAX] = { false };

	out->n = 0;
	if (file >= d->set->n_file)
		return tsr_err_set(err, GRPC_STATUS_INTERNAL, "no file #%zu", file);
	order[n++] = file;
	seen[file] = true;
	/* Breadth first, with order[] as the queue: each file enters once. */
	for (size_t i = 0; i < n; i++) {
		const Google__Protobuf__FileDescriptorProto *f = d->set->file[order[i]];

		for (size_t j = 0; j < f->n_dependency; j++) {
			if (descriptors_file_by_name(d, f->dependency[j], &dep, err) != 0)
				return tsr_err_set(err, GRPC_STATUS_INTERNAL,
						   "the build left out the import %s",
						   f->dependency[j]);
			if (!seen[dep]) {
				seen[dep] = true;
				order[n++] = dep;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (pb_pack(&d->set->file[order[i]]->base, &out->files[i].data, &out->files[i].len,
			    err) != 0)
			return -1;
		out->n++;
	}
	return 0;
}

void descriptors_closure_free(struct descriptors_closure *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->files[i].data);
	c->n = 0;
}
