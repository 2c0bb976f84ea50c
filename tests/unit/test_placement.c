/*
 * test_placement: which spoke a spawn goes to, on registries built by
 * hand: least loaded with round-robin ties, stale and unknown load,
 * health and refusal, draining spokes and those a spawn was refused by,
 * label selectors, request ids that always map to the same spoke, and
 * the checks and texts of selectors.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "hub_config.h"
#include "placement.h"
#include "spokes.h"

/* A registry of n spokes with the given labels ("k=v" or ""), all connected. */
struct fleet {
	struct hub_spoke_conf conf[4];
	struct spoke v[4];
	struct spokes s;
};

static void fleet_init(struct fleet *f, size_t n, const char *const *labels)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(labels[i], '=');

		snprintf(f->conf[i].id, sizeof(f->conf[i].id), "spoke-%zu", i);
		if (eq != NULL) {
			snprintf(f->conf[i].labels[0].key, sizeof(f->conf[i].labels[0].key), "%.*s",
				 (int)(eq - labels[i]), labels[i]);
			snprintf(f->conf[i].labels[0].value, sizeof(f->conf[i].labels[0].value),
				 "%s", eq + 1);
			f->conf[i].nlabels = 1;
		}
		f->v[i].index = i;
		f->v[i].conf = &f->conf[i];
		f->v[i].health = SPOKE_CONNECTED;
	}
	f->s.v = f->v;
	f->s.n = n;
}

static void fleet_load(struct fleet *f, size_t i, int32_t running, int32_t max)
{
	f->v[i].load_known = true;
	f->v[i].running = running;
	f->v[i].max = max;
	f->v[i].load_at_ms = 1000;
}

/* The index placement chooses, or -1 with err.code in *code. */
static int fleet_place(struct fleet *f, const char *request_id,
		       const struct placement_label *labels, size_t n, int *code)
{
	struct placement p = {
		.request_id = request_id, .labels = labels, .nlabels = n, .now_ms = 2000
	};
	struct spoke *sp;
	struct tsr_err err;

	if (placement_choose(&f->s, &p, &sp, &err) != 0) {
		*code = err.code;
		return -1;
	}
	return (int)sp->index;
}

START_TEST(test_placement_least_loaded)
{
	static const char *const none[] = { "", "", "" };
	struct fleet f;
	int code;

	fleet_init(&f, 3, none);
	fleet_load(&f, 0, 3, 8);
	fleet_load(&f, 1, 1, 8);
	fleet_load(&f, 2, 1, 8);
	/* Ties go round robin, and each placement counts until the next poll. */
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	ck_assert_int_eq(f.v[1].running, 2);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 2);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 2);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 0);

	/* Unknown or stale load sorts after every known one, even a busy one. */
	fleet_init(&f, 3, none);
	fleet_load(&f, 1, 7, 8);
	fleet_load(&f, 2, 0, 8);
	f.v[2].load_at_ms = 2000 - PLACEMENT_LOAD_STALE_MS - 1;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	/* Now at its max; the two unknown ones take turns. */
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 2);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 0);

	/* A spoke at its max is skipped; when every one is: RESOURCE_EXHAUSTED. */
	fleet_init(&f, 2, none);
	fleet_load(&f, 0, 8, 8);
	fleet_load(&f, 1, 3, 4);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	ck_assert_int_eq(f.v[1].running, 4);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_RESOURCE_EXHAUSTED);

	/* Connected before connecting, whatever the load; never unreachable. */
	fleet_init(&f, 3, none);
	fleet_load(&f, 0, 0, 8);
	fleet_load(&f, 1, 6, 8);
	fleet_load(&f, 2, 0, 8);
	f.v[0].health = SPOKE_CONNECTING;
	f.v[2].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	f.v[1].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 0);
	f.v[0].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);
}
END_TEST

START_TEST(test_placement_refused)
{
	static const char *const none[] = { "", "", "" };
	const struct tsr_err why = { GRPC_STATUS_PERMISSION_DENIED,
				     "command from an untrusted key" };
	struct fleet f;
	int code;
	struct spoke *sp;
	struct tsr_err err;
	struct placement p = { .request_id = "", .now_ms = 2000 };

	/* A refused spoke is passed over, however empty it is. */
	fleet_init(&f, 3, none);
	fleet_load(&f, 0, 0, 8);
	fleet_load(&f, 1, 5, 8);
	fleet_load(&f, 2, 6, 8);
	spokes_poll_result(&f.v[0], &why, true);
	f.v[0].health = SPOKE_REFUSED;
	for (int i = 0; i < 4; i++)
		ck_assert_int_ne(fleet_place(&f, "", NULL, 0, &code), 0);

	/* Only refused and unreachable ones left: UNAVAILABLE, saying why. */
	f.v[1].health = SPOKE_UNREACHABLE;
	f.v[2].health = SPOKE_UNREACHABLE;
	ck_assert_int_ne(placement_choose(&f.s, &p, &sp, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(err.msg, "spoke spoke-0 is refused: PERMISSION_DENIED: "
					      "command from an untrusted key"));

	/* A request id still maps to its spoke, whatever its state. */
	f.v[1].health = SPOKE_REFUSED;
	f.v[2].health = SPOKE_REFUSED;
	ck_assert_int_ge(fleet_place(&f, "deploy-42", NULL, 0, &code), 0);
}
END_TEST

/* The index placement chooses with tried (by index), or -1 with the error in *err. */
static int fleet_place_tried(struct fleet *f, const char *request_id,
			     const struct placement_label *labels, size_t n, const bool *tried,
			     struct tsr_err *err)
{
	struct placement p = { .request_id = request_id,
			       .labels = labels,
			       .nlabels = n,
			       .now_ms = 2000,
			       .tried = tried };
	struct spoke *sp;

	if (placement_choose(&f->s, &p, &sp, err) != 0)
		return -1;
	return (int)sp->index;
}

START_TEST(test_placement_draining)
{
	static const char *const zones[] = { "zone=eu", "zone=eu", "zone=us" };
	const struct placement_label eu = { "zone", "eu" };
	bool tried[4] = { false };
	struct tsr_err err;
	struct fleet f;
	int first, second, code;

	/* Least loaded passes over a draining spoke, however empty it is. */
	fleet_init(&f, 3, zones);
	fleet_load(&f, 0, 0, 8);
	fleet_load(&f, 1, 3, 8);
	fleet_load(&f, 2, 5, 8);
	f.v[0].draining = true;
	for (int i = 0; i < 3; i++)
		ck_assert_int_ne(fleet_place(&f, "", NULL, 0, &code), 0);
	/* ... and over one that refused this spawn, draining as far as we knew or not. */
	fleet_init(&f, 3, zones);
	fleet_load(&f, 0, 0, 8);
	fleet_load(&f, 1, 3, 8);
	fleet_load(&f, 2, 5, 8);
	tried[0] = true;
	ck_assert_int_eq(fleet_place_tried(&f, "", NULL, 0, tried, &err), 1);
	tried[0] = false;

	/* Every matching spoke draining: FAILED_PRECONDITION, saying so. */
	f.v[0].draining = true;
	f.v[1].draining = true;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 2);
	ck_assert_int_eq(fleet_place_tried(&f, "", &eu, 1, NULL, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_str_eq(err.msg,
			 "every spoke matching zone=eu is draining: none takes new agents");
	f.v[2].draining = true;
	ck_assert_int_eq(fleet_place_tried(&f, "", NULL, 0, NULL, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_str_eq(err.msg, "every spoke is draining: none takes new agents");

	/* The others unreachable, or at their max: their own errors, naming the drain. */
	f.v[2].draining = false;
	f.v[2].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place_tried(&f, "", NULL, 0, NULL, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_str_eq(err.msg,
			 "no spoke that is not draining is reachable to place the agent on");
	f.v[2].health = SPOKE_CONNECTED;
	fleet_load(&f, 2, 8, 8);
	ck_assert_int_eq(fleet_place_tried(&f, "", NULL, 0, NULL, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_str_eq(err.msg,
			 "every reachable spoke that is not draining is at its max-agents");

	/*
	 * A request id goes to its spoke draining or not (it may hold the
	 * agent of an earlier try); refused there, to the next in the id's
	 * order, the same every time; refused by every one, FAILED_PRECONDITION.
	 */
	fleet_init(&f, 3, zones);
	f.v[0].draining = f.v[1].draining = f.v[2].draining = true;
	first = fleet_place_tried(&f, "deploy-7", NULL, 0, NULL, &err);
	ck_assert_int_ge(first, 0);
	tried[first] = true;
	second = fleet_place_tried(&f, "deploy-7", NULL, 0, tried, &err);
	ck_assert_int_ge(second, 0);
	ck_assert_int_ne(second, first);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(fleet_place_tried(&f, "deploy-7", NULL, 0, tried, &err), second);
	tried[second] = true;
	ck_assert_int_eq(fleet_place_tried(&f, "deploy-7", NULL, 0, tried, &err),
			 3 - first - second);
	tried[3 - first - second] = true;
	ck_assert_int_eq(fleet_place_tried(&f, "deploy-7", NULL, 0, tried, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_str_eq(err.msg, "every spoke is draining: none takes new agents");
	/* Only the matching ones count: both zone=eu spokes refused it. */
	memset(tried, 0, sizeof(tried));
	tried[0] = tried[1] = true;
	ck_assert_int_eq(fleet_place_tried(&f, "deploy-7", &eu, 1, tried, &err), -1);
	ck_assert_str_eq(err.msg,
			 "every spoke matching zone=eu is draining: none takes new agents");
}
END_TEST

START_TEST(test_placement_labels)
{
	static const char *const zones[] = { "zone=us", "zone=eu", "zone=eu", "" };
	const struct placement_label eu = { "zone", "eu" }, ap = { "zone", "ap" };
	struct fleet f;
	int code, first;

	fleet_init(&f, 4, zones);
	for (int i = 0; i < 6; i++) {
		int got = fleet_place(&f, "", &eu, 1, &code);

		ck_assert(got == 1 || got == 2);
	}
	ck_assert_int_eq(fleet_place(&f, "", &ap, 1, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_FAILED_PRECONDITION);
	f.v[1].health = SPOKE_UNREACHABLE;
	f.v[2].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place(&f, "", &eu, 1, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);

	/* A request id picks the same matching spoke every time, whatever its health. */
	first = fleet_place(&f, "deploy-42", &eu, 1, &code);
	ck_assert(first == 1 || first == 2);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(fleet_place(&f, "deploy-42", &eu, 1, &code), first);
	ck_assert_int_eq(fleet_place(&f, "deploy-42", &ap, 1, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_int_ge(fleet_place(&f, "deploy-42", NULL, 0, &code), 0);
}
END_TEST

START_TEST(test_placement_check_labels)
{
	struct placement_label l[TSR_LABELS_MAX + 1];
	char keys[TSR_LABELS_MAX + 1][8], long_value[TSR_LABEL_VALUE_MAX + 2];
	struct tsr_err err;

	for (size_t i = 0; i <= TSR_LABELS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		l[i].key = keys[i];
		l[i].value = "v";
	}
	ck_assert_int_eq(placement_check_labels(l, TSR_LABELS_MAX, &err), 0);
	ck_assert_int_ne(placement_check_labels(l, TSR_LABELS_MAX + 1, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	memset(long_value, 'x', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	l[1].value = long_value;
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
	long_value[TSR_LABEL_VALUE_MAX] = '\0';
	ck_assert_int_eq(placement_check_labels(l, 2, &err), 0);
	l[1].value = "";
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
	l[1].value = "a b";
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
	l[1].value = "v";
	l[1].key = "k0";
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
	l[1].key = "bad key";
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
}
END_TEST

/* Matching, the age of load figures, and a selector as error messages show it. */
START_TEST(test_placement_parts)
{
	static const char *const zones[] = { "zone=eu", "" };
	const struct placement_label eu = { "zone", "eu" };
	const struct placement_label two[] = { { "zone", "eu" }, { "gpu", "yes" } };
	struct fleet f;
	char text[16];

	fleet_init(&f, 2, zones);
	ck_assert(placement_matches(&f.v[0], &eu, 1));
	ck_assert(!placement_matches(&f.v[1], &eu, 1));
	/* No selector matches every spoke; a selector needs every one of its labels. */
	ck_assert(placement_matches(&f.v[1], NULL, 0));
	ck_assert(!placement_matches(&f.v[0], two, 2));

	ck_assert(!placement_load_known(&f.v[0], 1000));
	fleet_load(&f, 0, 1, 8);
	ck_assert(placement_load_known(&f.v[0], 1000 + PLACEMENT_LOAD_STALE_MS));
	ck_assert(!placement_load_known(&f.v[0], 1000 + PLACEMENT_LOAD_STALE_MS + 1));

	placement_labels_text(two, 2, text, sizeof(text));
	ck_assert_str_eq(text, "zone=eu,gpu=yes");
	/* Cut to fit, never overflowing. */
	placement_labels_text(two, 2, text, 10);
	ck_assert_str_eq(text, "zone=eu,g");
	placement_labels_text(NULL, 0, text, sizeof(text));
	ck_assert_str_eq(text, "");
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "placement",
		    CHECK_TESTS(test_placement_least_loaded, test_placement_labels,
				test_placement_check_labels, test_placement_refused,
				test_placement_draining, test_placement_parts));
	return 0;
}
