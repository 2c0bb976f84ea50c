/* placement: label selectors, rendezvous hashing and least-loaded choice. */
#include "placement.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "ids.h"

int placement_check_labels(const struct placement_label *labels, size_t n,
			   struct tsr_err *err)
{
	struct tsr_label l[TSR_LABELS_MAX];

	if (n > TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "at most %d spoke labels", TSR_LABELS_MAX);
	for (size_t i = 0; i < n; i++) {
		l[i].key = labels[i].key;
		l[i].value = labels[i].value;
	}
	return ids_check_labels(l, n, "spoke label", err);
}

bool placement_matches(const struct spoke *sp, const struct placement_label *labels, size_t n)
{
	const struct hub_spoke_conf *c = sp->conf;

	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (size_t j = 0; j < c->nlabels && !found; j++)
			found = strcmp(c->labels[j].key, labels[i].key) == 0 &&
				strcmp(c->labels[j].value, labels[i].value) == 0;
		if (!found)
			return false;
	}
	return true;
}

bool placement_load_known(const struct spoke *sp, int64_t now_ms)
{
	return sp->load_known && now_ms - sp->load_at_ms <= PLACEMENT_LOAD_STALE_MS;
}

void placement_labels_text(const struct placement_label *labels, size_t n, char *buf,
			   size_t buflen)
{
	size_t used = 0;
	int w;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < buflen; i++) {
		w = snprintf(buf + used, buflen - used, "%s%s=%s", i > 0 ? "," : "",
			     labels[i].key, labels[i].value);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* Rendezvous hashing: the matching spoke with the highest hash of (spoke, id). */
static struct spoke *placement_by_request(struct spokes *s, const struct placement *p)
{
	struct spoke *best = NULL;
	uint64_t best_score = 0;

	for (size_t i = 0; i < s->n; i++) {
		crypto_generichash_state st;
		uint8_t h[8];
		uint64_t score = 0;

		if (!placement_matches(&s->v[i], p->labels, p->nlabels))
			continue;
		crypto_generichash_init(&st, NULL, 0, sizeof(h));
		crypto_generichash_update(&st, (const uint8_t *)s->v[i].conf->id,
					  strlen(s->v[i].conf->id) + 1);
		crypto_generichash_update(&st, (const uint8_t *)p->request_id,
					  strlen(p->request_id));
		crypto_generichash_final(&st, h, sizeof(h));
		for (size_t k = 0; k < sizeof(h); k++)
			score = score << 8 | h[k];
		if (best == NULL || score > best_score) {
			best = &s->v[i];
			best_score = score;
		}
	}
	return best;
}

/*
 * Lower is better: connected before connecting, then known load before
 * unknown, then fewer running agents. Running is at most the spoke's max
 * (checked when the figures arrive), so the fields cannot overlap.
 */
static uint64_t placement_rank(const struct spoke *sp, bool known)
{
	uint64_t tier = sp->health == SPOKE_CONNECTED ? 0 : 1;

	return tier << 40 | (uint64_t)(known ? 0 : 1) << 32 |
	       (uint64_t)(known ? (uint32_t)sp->running : 0);
}

int placement_choose(struct spokes *s, const struct placement *p, struct spoke **out,
		     struct tsr_err *err)
{
	char text[TSR_ERR_MSG_MAX / 2];
	struct spoke *best = NULL, *refused = NULL;
	uint64_t best_rank = 0;
	size_t matching = 0, reachable = 0;
	int rc = -1;

	placement_labels_text(p->labels, p->nlabels, text, sizeof(text));
	if (p->request_id[0] != '\0') {
		best = placement_by_request(s, p);
		if (best == NULL) {
			tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				    "no spoke matches labels %s", text);
			goto out;
		}
		*out = best;
		rc = 0;
		goto out;
	}
	/* From the round-robin position on, so that equal ranks take turns. */
	for (size_t k = 0; k < s->n; k++) {
		struct spoke *sp = &s->v[(s->next + k) % s->n];
		bool known = placement_load_known(sp, p->now_ms);
		uint64_t rank;

		if (!placement_matches(sp, p->labels, p->nlabels))
			continue;
		matching++;
		/* A refused spoke would refuse the spawn too. */
		if (sp->health == SPOKE_REFUSED && refused == NULL)
			refused = sp;
		if (sp->health == SPOKE_UNREACHABLE || sp->health == SPOKE_REFUSED)
			continue;
		reachable++;
		if (known && sp->running >= sp->max)
			continue;
		rank = placement_rank(sp, known);
		if (best == NULL || rank < best_rank) {
			best = sp;
			best_rank = rank;
		}
	}
	if (matching == 0) {
		tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION, "no spoke matches labels %s",
			    text);
		goto out;
	}
	if (reachable == 0 && refused != NULL) {
		/* Say why, or the user only learns that nothing is reachable. */
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE,
			    "no spoke%s%s is reachable to place the agent on; spoke %s is refused: %s",
			    p->nlabels > 0 ? " matching " : "", text, refused->conf->id,
			    refused->reason);
		goto out;
	}
	if (reachable == 0) {
		tsr_err_set(err, GRPC_STATUS_UNAVAILABLE,
			    "no spoke%s%s is reachable to place the agent on",
			    p->nlabels > 0 ? " matching " : "", text);
		goto out;
	}
	if (best == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
			    "every reachable spoke%s%s is at its max-agents",
			    p->nlabels > 0 ? " matching " : "", text);
		goto out;
	}
	s->next = (best->index + 1) % s->n;
	if (placement_load_known(best, p->now_ms))
		best->running++;
	*out = best;
	rc = 0;
out:
	return rc;
}
