/*
 * test_agent_types: the spoke config lines that define agent types
 * (agent, agent-timeout, agent-grace, agent-env, agent-dir, agent-user,
 * agent-rlimit), each of their rejections, the spec the shim gets from
 * them, and that freeing leaves the table reusable.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_types.h"
#include "check_main.h"
#include "config.h"

#define DIR_PATH_MAX 128

/* Per test (checked fixture). */
static struct agent_types types;
static char dir[DIR_PATH_MAX];	 /* scratch directory */
static char plain[DIR_PATH_MAX]; /* a regular file without x bits, in dir */
static char exe[DIR_PATH_MAX];	 /* an executable regular file, in dir */
static char sub[DIR_PATH_MAX];	 /* a subdirectory of dir */

static void path_in_dir(char *out, const char *name)
{
	ck_assert_int_lt(snprintf(out, DIR_PATH_MAX, "%s/%s", dir, name), DIR_PATH_MAX);
}

static void make_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tsr-at-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	path_in_dir(plain, "plain");
	path_in_dir(exe, "exe");
	path_in_dir(sub, "sub");
	make_file(plain, 0644);
	make_file(exe, 0755);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	memset(&types, 0, sizeof(types));
}

static void teardown(void)
{
	agent_types_free(&types);
	chmod(sub, 0755);
	ck_assert_int_eq(unlink(plain), 0);
	ck_assert_int_eq(unlink(exe), 0);
	ck_assert_int_eq(rmdir(sub), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}

/* Splits line as the config parser does and hands it to the function its keyword names. */
static int line(const char *l, struct tsr_err *err)
{
	char buf[CONFIG_LINE_MAX];
	char *argv[CONFIG_WORDS_MAX];
	int argc;

	ck_assert_int_lt(snprintf(buf, sizeof(buf), "%s", l), (int)sizeof(buf));
	argc = config_split(buf, argv, CONFIG_WORDS_MAX);
	ck_assert_int_gt(argc, 0);
	tsr_err_clear(err);
	if (strcmp(argv[0], "agent-timeout") == 0 || strcmp(argv[0], "agent-grace") == 0)
		return agent_types_limit(&types, argc, argv, err);
	if (strcmp(argv[0], "agent-env") == 0 || strcmp(argv[0], "agent-dir") == 0)
		return agent_types_launch(&types, argc, argv, err);
	if (strcmp(argv[0], "agent-user") == 0 || strcmp(argv[0], "agent-rlimit") == 0)
		return agent_types_account(&types, argc, argv, err);
	return agent_types_add(&types, argc, argv, err);
}

/* line() of words followed by a path from the fixture. */
static int line_path(const char *words, const char *path, struct tsr_err *err)
{
	char buf[CONFIG_LINE_MAX];

	ck_assert_int_lt(snprintf(buf, sizeof(buf), "%s %s", words, path), (int)sizeof(buf));
	return line(buf, err);
}

static void ok(const char *l)
{
	struct tsr_err err;

	ck_assert_msg(line(l, &err) == 0, "refused: %s: %s", l, err.msg);
}

static void refused(const char *l, grpc_status_code code)
{
	struct tsr_err err;

	ck_assert_msg(line(l, &err) == -1, "accepted: %s", l);
	ck_assert_msg(err.code == code, "%s: code %d, want %d (%s)", l, err.code, code, err.msg);
	ck_assert_msg(err.msg[0] != '\0', "%s: no message", l);
}

static const struct agent_type *find(const char *name)
{
	const struct agent_type *t = agent_types_find(&types, name);

	ck_assert_msg(t != NULL, "no type %s", name);
	return t;
}

START_TEST(test_agent_line)
{
	const struct agent_type *t;

	ok("agent plain stdin /bin/true");
	ok("agent echo-2 env /bin/echo hello  world");
	t = find("echo-2");
	ck_assert_int_eq(t->delivery, AGENT_TASK_ENV);
	ck_assert_str_eq(t->argv[0], "/bin/echo");
	ck_assert_str_eq(t->argv[1], "hello");
	ck_assert_str_eq(t->argv[2], "world");
	ck_assert_ptr_null(t->argv[3]);
	t = find("plain");
	ck_assert_int_eq(t->delivery, AGENT_TASK_STDIN);
	ck_assert_str_eq(t->argv[0], "/bin/true");
	ck_assert_ptr_null(t->argv[1]);
	/* Defaults until a later line says otherwise. */
	ck_assert_uint_eq(t->timeout_default_ms, 0);
	ck_assert_uint_eq(t->timeout_max_ms, TSR_AGENT_TIMEOUT_MAX_MS);
	ck_assert_int_eq(t->grace_ms, -1);
	ck_assert_ptr_null(t->env);
	ck_assert_uint_eq(t->env_n, 0);
	ck_assert_ptr_null(t->workdir);
	ck_assert_uint_eq(types.n, 2);
	ck_assert_ptr_null(agent_types_find(&types, "missing"));
	ck_assert_ptr_null(agent_types_find(&types, "Plain"));
}
END_TEST

START_TEST(test_agent_rejections)
{
	static const char *const bad[] = {
		"agent x stdin bin/true",	   /* relative */
		"agent x stdin ./true",		   /* relative too */
		"agent co.dex stdin /bin/true",	   /* bad name */
		"agent x pipe /bin/true",	   /* unknown delivery */
		"agent x stdin /nonexistent/true", /* missing */
		"agent x stdin",		   /* no path */
		"agent x",			   /* no delivery */
		"agnet x stdin /bin/true",	   /* not an agent line */
		"agent first stdin /bin/true",	   /* defined twice */
	};
	char *argv[AGENT_ARGV_MAX + 4];
	struct tsr_err err;

	ok("agent first stdin /bin/true");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i], GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(line_path("agent x stdin", plain, &err), -1); /* not executable */
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(line_path("agent x stdin", sub, &err), -1); /* a directory */
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(line_path("agent x stdin", exe, &err), 0);
	ck_assert_str_eq(find("x")->argv[0], exe);

	/* One argument more than a type may have (more than a config line can split). */
	argv[0] = "agent";
	argv[1] = "many";
	argv[2] = "stdin";
	argv[3] = "/bin/true";
	for (int i = 4; i < AGENT_ARGV_MAX + 4; i++)
		argv[i] = "a";
	ck_assert_int_eq(agent_types_add(&types, AGENT_ARGV_MAX + 4, argv, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(agent_types_add(&types, AGENT_ARGV_MAX + 3, argv, &err), 0);
	ck_assert_ptr_null(find("many")->argv[AGENT_ARGV_MAX]);
	ck_assert_uint_eq(types.n, 3);
}
END_TEST

START_TEST(test_too_many_types)
{
	char l[64];

	for (size_t i = 0; i < AGENT_TYPES_MAX; i++) {
		snprintf(l, sizeof(l), "agent t%zu stdin /bin/true", i);
		ok(l);
	}
	refused("agent one-more stdin /bin/true", GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_uint_eq(types.n, AGENT_TYPES_MAX);
	ck_assert_ptr_null(agent_types_find(&types, "one-more"));
}
END_TEST

START_TEST(test_limits)
{
	static const char *const bad[] = {
		"agent-timeout nosuch 0 1000", /* unknown type */
		"agent-grace nosuch 10",       /* unknown type */
		"agent-timeout a 2000 1000",   /* default above max */
		"agent-timeout a 0 0",	       /* max 0 */
		"agent-timeout a 0 86400001",  /* above 24 h */
		"agent-timeout a 0",	       /* too few words */
		"agent-timeout a 0 10 20",     /* too many */
		"agent-timeout a -1 1000",     /* negative */
		"agent-timeout a 1e3 2000",    /* not a whole number */
		"agent-grace a 600001",	       /* above the grace cap */
		"agent-grace a -1",	       /* negative */
		"agent-grace a 1x",	       /* not a number */
		"agent-grace a",	       /* too few words */
	};
	struct tsr_err err;
	char *kw[] = { "agent-nothing", "a", "1" };
	const struct agent_type *t;

	/* A limit before its type is defined is as unknown as a type never defined. */
	refused("agent-timeout a 0 1000", GRPC_STATUS_INVALID_ARGUMENT);
	ok("agent a stdin /bin/true");
	ok("agent b stdin /bin/true");
	ok("agent-timeout a 1000 60000");
	ok("agent-grace a 250");
	t = find("a");
	ck_assert_uint_eq(t->timeout_default_ms, 1000);
	ck_assert_uint_eq(t->timeout_max_ms, 60000);
	ck_assert_int_eq(t->grace_ms, 250);
	/* The other type keeps its defaults. */
	ck_assert_uint_eq(find("b")->timeout_max_ms, TSR_AGENT_TIMEOUT_MAX_MS);
	ck_assert_int_eq(find("b")->grace_ms, -1);
	/* Bounds themselves are accepted. */
	ok("agent-timeout b 86400000 86400000");
	ok("agent-grace b 0");
	ck_assert_uint_eq(find("b")->timeout_default_ms, TSR_AGENT_TIMEOUT_MAX_MS);
	ck_assert_int_eq(find("b")->grace_ms, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i], GRPC_STATUS_INVALID_ARGUMENT);
	/* Refused lines changed nothing. */
	ck_assert_uint_eq(t->timeout_default_ms, 1000);
	ck_assert_uint_eq(t->timeout_max_ms, 60000);
	ck_assert_int_eq(t->grace_ms, 250);
	ck_assert_int_eq(agent_types_limit(&types, 3, kw, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_env)
{
	static const char *const bad[] = {
		"agent-env nosuch A=1",	     /* unknown type */
		"agent-env a A",	     /* no '=' */
		"agent-env a =1",	     /* empty name */
		"agent-env a 1A=1",	     /* starts with a digit */
		"agent-env a A-B=1",	     /* '-' */
		"agent-env a A.B=1",	     /* '.' */
		"agent-env a PATH=/opt/bin", /* the spoke's */
		"agent-env a HOME=/root",
		"agent-env a TESSERA_TASK=x",
		"agent-env a TESSERA_AGENT_ID=x",
		"agent-env a TESSERA_ANYTHING=x", /* the whole prefix */
		"agent-env a MODEL=other",	  /* set twice */
		"agent-env a",			  /* too few words */
		"agent-env a A=1 2",		  /* a value is one word */
	};
	const struct agent_type *t;
	struct tsr_err err;
	char *kw[] = { "agent-envy", "a", "A=1" };

	refused("agent-env a A=1", GRPC_STATUS_INVALID_ARGUMENT); /* before its agent line */
	ok("agent a env /bin/true");
	ok("agent b env /bin/true");
	ok("agent-env a MODEL=gpt-5");
	ok("agent-env a EMPTY=");
	ok("agent-env a OPTS=--x=1,y=2"); /* '=' in the value is the value's */
	ok("agent-env a _lower_9=x");
	ok("agent-env a path=/tmp"); /* names are case-sensitive: not PATH */
	ok("agent-env a TESSERA=1"); /* only the prefix TESSERA_ is reserved */
	ok("agent-env a MODEL_2=x"); /* MODEL as a prefix is another name */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i], GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(agent_types_launch(&types, 3, kw, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);

	t = find("a");
	ck_assert_uint_eq(t->env_n, 7);
	ck_assert_str_eq(t->env[0], "MODEL=gpt-5");
	ck_assert_str_eq(t->env[1], "EMPTY=");
	ck_assert_str_eq(t->env[2], "OPTS=--x=1,y=2");
	ck_assert_str_eq(t->env[3], "_lower_9=x");
	ck_assert_str_eq(t->env[4], "path=/tmp");
	ck_assert_str_eq(t->env[5], "TESSERA=1");
	ck_assert_str_eq(t->env[6], "MODEL_2=x");
	ck_assert_ptr_null(t->env[7]);
	/* Per type: b may set what a set. */
	ck_assert_ptr_null(find("b")->env);
	ok("agent-env b MODEL=other");
	ck_assert_uint_eq(find("b")->env_n, 1);
	ck_assert_str_eq(find("b")->env[0], "MODEL=other");
	ck_assert_ptr_null(find("b")->env[1]);
}
END_TEST

START_TEST(test_env_too_many)
{
	const struct agent_type *t;
	char l[64];

	ok("agent a stdin /bin/true");
	for (int i = 0; i < AGENT_ENV_MAX; i++) {
		snprintf(l, sizeof(l), "agent-env a V%d=%d", i, i);
		ok(l);
	}
	refused("agent-env a ONE_MORE=1", GRPC_STATUS_RESOURCE_EXHAUSTED);
	t = find("a");
	ck_assert_uint_eq(t->env_n, AGENT_ENV_MAX);
	ck_assert_str_eq(t->env[AGENT_ENV_MAX - 1], "V31=31");
	ck_assert_ptr_null(t->env[AGENT_ENV_MAX]);
}
END_TEST

START_TEST(test_dir)
{
	static const char *const bad[] = {
		"agent-dir a tmp",		/* relative */
		"agent-dir a ./",		/* relative */
		"agent-dir a /nonexistent/dir", /* missing */
		"agent-dir a",			/* too few words */
		"agent-dir a /tmp /tmp",	/* too many */
	};
	struct tsr_err err;

	ck_assert_int_eq(line_path("agent-dir a", sub, &err), -1); /* before its agent line */
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ok("agent a stdin /bin/true");
	ok("agent b stdin /bin/true");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i], GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(line_path("agent-dir a", plain, &err), -1); /* a file */
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(line_path("agent-dir nosuch", sub, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_null(find("a")->workdir);

	ck_assert_int_eq(line_path("agent-dir a", sub, &err), 0);
	ck_assert_str_eq(find("a")->workdir, sub);
	ck_assert_ptr_null(find("b")->workdir);
	/* One directory per type. */
	ck_assert_int_eq(line_path("agent-dir a", dir, &err), -1);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(find("a")->workdir, sub);

	/* Root may search any directory, so only others can see this refusal. */
	if (geteuid() != 0) {
		ck_assert_int_eq(chmod(sub, 0600), 0);
		ck_assert_int_eq(line_path("agent-dir b", sub, &err), -1);
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
		ck_assert_ptr_null(find("b")->workdir);
	}
}
END_TEST

START_TEST(test_user)
{
	static const char *const bad[] = {
		"agent-user a",			     /* too few words */
		"agent-user a nobody nogroup",	     /* too many */
		"agent-user a no-such-user-here",    /* unknown name */
		"agent-user a nobody:no-such-group", /* unknown group */
		"agent-user a 64123",		     /* no passwd entry, no group */
		"agent-user a 0:65534",		     /* root */
		"agent-user a root",		     /* root by name */
		"agent-user a 65534:0",		     /* group root */
		"agent-user a 4294967295:1",	     /* (uid_t)-1 means "unchanged" */
		"agent-user a 12x:1",
		"agent-user nosuch nobody",
	};
	char word[SHIM_SPEC_MAX];
	struct shim_spec back;

	ok("agent a stdin /bin/true");
	ok("agent b stdin /bin/true");
	ok("agent c stdin /bin/true");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i], GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert(!find("a")->spec.set_user);
	ck_assert_ptr_null(find("a")->home);

	ok("agent-user a nobody");
	ck_assert(find("a")->spec.set_user);
	ck_assert_uint_eq(find("a")->spec.uid, 65534);
	ck_assert_uint_eq(find("a")->spec.gid, 65534);
	ck_assert_str_eq(find("a")->home, "/nonexistent");
	refused("agent-user a nobody", GRPC_STATUS_INVALID_ARGUMENT); /* once per type */
	ok("agent-user b 64123:nogroup");
	ck_assert_uint_eq(find("b")->spec.uid, 64123);
	ck_assert_uint_eq(find("b")->spec.gid, 65534);
	ck_assert_str_eq(find("b")->home, "/");

	/* What the shim is handed is what was configured. */
	shim_spec_format(&find("b")->spec, word);
	ck_assert_str_eq(word, "user=64123:65534");
	ck_assert_int_eq(shim_spec_parse(word, &back), 0);
	ck_assert(back.set_user && back.uid == 64123 && back.gid == 65534);
	shim_spec_format(&find("c")->spec, word);
	ck_assert_str_eq(word, SHIM_SPEC_NONE);
}
END_TEST

START_TEST(test_rlimit)
{
	static const char *const bad[] = {
		"agent-rlimit a nofile 10",	      /* too few words */
		"agent-rlimit a nofile 10 20 30",     /* too many */
		"agent-rlimit a stack 10 20",	      /* not one of ours */
		"agent-rlimit a nofile 20 10",	      /* soft above hard */
		"agent-rlimit a nofile unlimited 10", /* the same */
		"agent-rlimit a nofile -1 10",
		"agent-rlimit a nofile 1e3 2000",
		"agent-rlimit a nofile 1 9999999999999999999",
		"agent-rlimit nosuch nofile 1 2",
	};
	char word[SHIM_SPEC_MAX];
	struct shim_spec back;

	ok("agent a stdin /bin/true");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i], GRPC_STATUS_INVALID_ARGUMENT);
	ok("agent-rlimit a nofile 64 128");
	ok("agent-rlimit a core 0 0");
	ok("agent-rlimit a nproc 100 unlimited");
	refused("agent-rlimit a core 0 1", GRPC_STATUS_INVALID_ARGUMENT); /* once per resource */
	ok("agent-user a nobody");

	shim_spec_format(&find("a")->spec, word);
	ck_assert_str_eq(word, "user=65534:65534,nproc=100:u,nofile=64:128,core=0:0");
	ck_assert_int_eq(shim_spec_parse(word, &back), 0);
	ck_assert_int_eq(memcmp(&back, &find("a")->spec, sizeof(back)), 0);
}
END_TEST

/* The shim refuses any spec word the spoke could not have written. */
START_TEST(test_spec_parse)
{
	static const char *const bad[] = {
		"",
		"user=1",
		"user=1:2,user=1:2",
		"nofile=2:1",
		"stack=1:2",
		"nofile=1:2,",
		",nofile=1:2",
		"user=-1:2",
		"user=u:1",
		"nofile=1",
		"core=x:1",
		"user=1:2:3",
		"nproc=1:2,nproc=1:2",
	};
	struct shim_spec s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(shim_spec_parse(bad[i], &s) == -1, "took \"%s\"", bad[i]);
	ck_assert_int_eq(shim_spec_parse("-", &s), 0);
	ck_assert(!s.set_user && !s.set_limit[SHIM_LIMIT_NOFILE]);
	ck_assert_int_eq(shim_spec_parse("nofile=u:u", &s), 0);
	ck_assert(s.limit[SHIM_LIMIT_NOFILE].rlim_cur == RLIM_INFINITY);
}
END_TEST

START_TEST(test_free)
{
	struct tsr_err err;

	for (int round = 0; round < 2; round++) {
		ok("agent a env /bin/echo x y");
		ok("agent-env a K=v");
		ok("agent-env a L=w");
		ck_assert_int_eq(line_path("agent-dir a", sub, &err), 0);
		ok("agent b stdin /bin/true");
		ok("agent-timeout b 5 10");
		ok("agent-user b nobody");
		ck_assert_uint_eq(types.n, 2);
		agent_types_free(&types);
		ck_assert_uint_eq(types.n, 0);
		ck_assert_ptr_null(agent_types_find(&types, "a"));
		ck_assert_ptr_null(agent_types_find(&types, "b"));
	}
	/* A freed slot reused starts from the defaults, not from what it held. */
	ok("agent a stdin /bin/true");
	ck_assert_ptr_null(find("a")->env);
	ck_assert_uint_eq(find("a")->env_n, 0);
	ck_assert_ptr_null(find("a")->workdir);
	ck_assert_int_eq(find("a")->grace_ms, -1);
	ck_assert(!find("a")->spec.set_user);
	ck_assert_ptr_null(find("a")->home);
	/* Freeing an empty table, and freeing twice, are harmless. */
	agent_types_free(&types);
	agent_types_free(&types);
	ok("agent a stdin /bin/true");
}
END_TEST

int test_suite(SRunner *sr)
{
	TCase *tc;

	tc = check_suite(sr, "agent_types",
			 CHECK_TESTS(test_agent_line, test_agent_rejections, test_too_many_types,
				     test_limits, test_env, test_env_too_many, test_dir, test_user,
				     test_rlimit, test_spec_parse, test_free));
	tcase_add_checked_fixture(tc, setup, teardown);
	return 0;
}
