/*
 * test_lifecycle: the transition table, checked pair by pair against the
 * design's list, and what is derived from it.
 */
#include <check.h>

#include "check_main.h"
#include "lifecycle.h"

#define SPAWNING TESSERA__V1__AGENT_STATE__AGENT_STATE_SPAWNING
#define RUNNING TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING
#define COMPLETED TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED
#define FAILED TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED
#define KILLED TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED
#define UNSPECIFIED TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED
/* Covers the enum plus values that only a bad message could carry. */
#define LO (-2)
#define HI 8

/* The design's list, written out independently of lifecycle.c. */
static bool expected(int from, int to)
{
	if (from == SPAWNING)
		return to == RUNNING || to == FAILED || to == KILLED;
	if (from == RUNNING)
		return to == COMPLETED || to == FAILED || to == KILLED;
	return false;
}

START_TEST(test_all_pairs)
{
	for (int from = LO; from <= HI; from++)
		for (int to = LO; to <= HI; to++)
			ck_assert_msg(lifecycle_allowed((Tessera__V1__AgentState)from,
							(Tessera__V1__AgentState)to) ==
					      expected(from, to),
				      "%d -> %d", from, to);
}
END_TEST

START_TEST(test_terminal)
{
	for (int s = LO; s <= HI; s++) {
		bool want = s == COMPLETED || s == FAILED || s == KILLED;

		ck_assert_msg(lifecycle_terminal((Tessera__V1__AgentState)s) == want, "%d", s);
		if (!want)
			continue;
		/* Nothing leaves a terminal state. */
		for (int to = LO; to <= HI; to++)
			ck_assert(!lifecycle_allowed((Tessera__V1__AgentState)s,
						     (Tessera__V1__AgentState)to));
	}
}
END_TEST

START_TEST(test_predecessors)
{
	Tessera__V1__AgentState out[LIFECYCLE_STATES_MAX];

	for (int to = LO; to <= HI; to++) {
		size_t n = lifecycle_predecessors((Tessera__V1__AgentState)to, out,
						  LIFECYCLE_STATES_MAX);
		size_t want = 0;

		for (int from = LO; from <= HI; from++)
			if (expected(from, to))
				want++;
		ck_assert_uint_eq(n, want);
		for (size_t i = 0; i < n; i++) {
			ck_assert(expected(out[i], to));
			if (i > 0)
				ck_assert_int_lt(out[i - 1], out[i]);
		}
	}
	ck_assert_uint_eq(lifecycle_predecessors(SPAWNING, out, LIFECYCLE_STATES_MAX), 0);
	ck_assert_uint_eq(lifecycle_predecessors(KILLED, out, LIFECYCLE_STATES_MAX), 2);
	ck_assert_int_eq(out[0], SPAWNING);
	ck_assert_int_eq(out[1], RUNNING);
	/* A short buffer still yields the full count and no overrun. */
	out[1] = UNSPECIFIED;
	ck_assert_uint_eq(lifecycle_predecessors(FAILED, out, 1), 2);
	ck_assert_int_eq(out[0], SPAWNING);
	ck_assert_int_eq(out[1], UNSPECIFIED);
}
END_TEST

START_TEST(test_names)
{
	static const char *const names[] = { "unspecified", "spawning", "running",
					     "completed",   "failed",	"killed" };
	Tessera__V1__AgentState s;

	for (int i = 0; i < 6; i++) {
		ck_assert_str_eq(lifecycle_state_name((Tessera__V1__AgentState)i), names[i]);
		ck_assert_int_eq(lifecycle_state_parse(names[i], &s), 0);
		ck_assert_int_eq(s, i);
	}
	ck_assert_ptr_null(lifecycle_state_name((Tessera__V1__AgentState)6));
	ck_assert_ptr_null(lifecycle_state_name((Tessera__V1__AgentState)-1));
	ck_assert_int_eq(lifecycle_state_parse("RUNNING", &s), -1);
	ck_assert_int_eq(lifecycle_state_parse("", &s), -1);
	ck_assert_int_eq(lifecycle_state_parse("run", &s), -1);
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "lifecycle",
		    CHECK_TESTS(test_all_pairs, test_terminal, test_predecessors, test_names));
	return 0;
}
