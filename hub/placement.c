/* placement: label selectors, rendezvous hashing and least-loaded choice. */
#include "placement.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "ids.h"

int placement_check_labels(const struct placement_label *labels, size_t n, struct tsr_err *err)
{
	struct tsr_label l[TSR_LABELS_MAX];

	if (n > TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "at most %d spoke labels",
				   TSR_LABELS_MAX);
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

void placement_labels_text(const struct placement_label *labels, size_t n, char *buf, size_t buflen)
{
	size_t used = 0;
	int w;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < buflen; i++) {
		w = snprintf(buf + used, buflen - used, "%s%s=%s", i > 0 ? "," : "", labels[i].key,
			     labels[i].value);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static bool placement_tried(const struct placement *p, const struct spoke *sp)
{
	return p->tried != NULL && p->tried[sp->index];
}

/*
 * Rendezvous hashing: of the matching spokes not tried yet, the one with
 * the highest hash of (spoke, id); *matching counts the matching ones.
 */
static struct spoke *placement_by_request(struct spokes *s, const struct placement *p,
					  size_t *matching)
{
	struct spoke *best = NULL;
	uint64_t best_score = 0;

	for (size_t i = 0; i < s->n; i++) {
		crypto_generichash_state st;
		uint8_t h[8];
		uint64_t score = 0;

		if (!placement_matches(&s->v[i], p->labels, p->nlabels))
			continue;
		(*matching)++;
		if (placement_tried(p, &s->v[i]))
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

/* What rule 3's pass over the spokes found. */
struct placement_scan {
	struct spoke *best;    /* the lowest rank with room; NULL: none */
	struct spoke *refused; /* the first matching refused spoke, or NULL */
	size_t matching, reachable;
	size_t draining; /* of the reachable ones, those draining or tried */
};

/* From the round-robin position on, so that equal ranks take turns. */
static void placement_scan(struct spokes *s, const struct placement *p, struct placement_scan *sc)
{
	uint64_t best_rank = 0;

	for (size_t k = 0; k < s->n; k++) {
		struct spoke *sp = &s->v[(s->next + k) % s->n];
		bool known = placement_load_known(sp, p->now_ms);
		uint64_t rank;

		if (!placement_matches(sp, p->labels, p->nlabels))
			continue;
		sc->matching++;
		/* A refused spoke would refuse the spawn too. */
		if (sp->health == SPOKE_REFUSED && sc->refused == NULL)
			sc->refused = sp;
		if (sp->health == SPOKE_UNREACHABLE || sp->health == SPOKE_REFUSED)
			continue;
		sc->reachable++;
		/* It would refuse the spawn, as it says (or as it just did). */
		if (sp->draining || placement_tried(p, sp)) {
			sc->draining++;
			continue;
		}
		if (known && sp->running >= sp->max)
			continue;
		rank = placement_rank(sp, known);
		if (sc->best == NULL || rank < best_rank) {
			sc->best = sp;
			best_rank = rank;
		}
	}
}

/* Why the scan found no spoke; text names the labels. Returns -1. */
static int placement_none(const struct placement *p, const struct placement_scan *sc,
			  const char *text, struct tsr_err *err)
{
	const char *matching = p->nlabels > 0 ? " matching " : "";
	const char *undrained = sc->draining > 0 ? " that is not draining" : "";

	if (sc->matching == 0)
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "no spoke matches labels %s", text);
	/* Only undraining them helps: no retry will. */
	if (sc->draining == sc->matching)
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "every spoke%s%s is draining: none takes new agents", matching,
				   text);
	/* Say why, or the user only learns that nothing is reachable. */
	if (sc->reachable == sc->draining && sc->refused != NULL)
		return tsr_err_set(err, GRPC_STATUS_UNAVAILABLE,
				   "no spoke%s%s%s is reachable to place the agent on; "
				   "spoke %s is refused: %s",
				   matching, text, undrained, sc->refused->conf->id,
				   sc->refused->reason);
	if (sc->reachable == sc->draining)
		return tsr_err_set(err, GRPC_STATUS_UNAVAILABLE,
				   "no spoke%s%s%s is reachable to place the agent on", matching,
				   text, undrained);
	return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
			   "every reachable spoke%s%s%s is at its max-agents", matching, text,
			   undrained);
}

int placement_choose(struct spokes *s, const struct placement *p, struct spoke **out,
		     struct tsr_err *err)
{
	char text[TSR_ERR_MSG_MAX / 2];
	struct placement_scan sc = { 0 };
	struct spoke *best;

	placement_labels_text(p->labels, p->nlabels, text, sizeof(text));
	if (p->request_id[0] != '\0') {
		best = placement_by_request(s, p, &sc.matching);
		/* None left untried: every matching spoke refused it as draining. */
		sc.draining = sc.matching;
		if (best == NULL)
			return placement_none(p, &sc, text, err);
		*out = best;
		return 0;
	}
	placement_scan(s, p, &sc);
	best = sc.best;
	if (best == NULL)
		return placement_none(p, &sc, text, err);
	s->next = (best->index + 1) % s->n;
	if (placement_load_known(best, p->now_ms))
		best->running++;
	*out = best;
	return 0;
}
