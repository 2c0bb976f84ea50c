/* shim_spec: the spec word between tessera-spoke and tessera-shim, and applying it. */
#include "shim_spec.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
	const char *name;
	int resource;
} shim_limits[SHIM_LIMITS] = {
	[SHIM_LIMIT_NPROC] = { "nproc", RLIMIT_NPROC },
	[SHIM_LIMIT_NOFILE] = { "nofile", RLIMIT_NOFILE },
	[SHIM_LIMIT_CORE] = { "core", RLIMIT_CORE },
};

const char *shim_limit_name(enum shim_limit l)
{
	return shim_limits[l].name;
}

int shim_limit_resource(enum shim_limit l)
{
	return shim_limits[l].resource;
}

int shim_limit_find(const char *name)
{
	for (int l = 0; l < SHIM_LIMITS; l++)
		if (strcmp(shim_limits[l].name, name) == 0)
			return l;
	return -1;
}

/* Appends one item; the caller's buffer holds every item there can be. */
static size_t shim_spec_put(char *buf, size_t at, const char *item)
{
	size_t len = strlen(item);

	if (at > 0)
		buf[at++] = ',';
	memcpy(buf + at, item, len + 1);
	return at + len;
}

static void shim_spec_value(char *buf, size_t len, rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, len, "u");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

void shim_spec_format(const struct shim_spec *s, char buf[SHIM_SPEC_MAX])
{
	char item[64], soft[24], hard[24];
	size_t at = 0;

	_Static_assert(sizeof("user=:") + 2 * 10 + SHIM_LIMITS * (sizeof(item) + 1) <=
			       SHIM_SPEC_MAX,
		       "every item fits a spec word");
	buf[0] = '\0';
	if (s->set_user) {
		snprintf(item, sizeof(item), "user=%u:%u", (unsigned)s->uid, (unsigned)s->gid);
		at = shim_spec_put(buf, at, item);
	}
	for (int l = 0; l < SHIM_LIMITS; l++) {
		if (!s->set_limit[l])
			continue;
		shim_spec_value(soft, sizeof(soft), s->limit[l].rlim_cur);
		shim_spec_value(hard, sizeof(hard), s->limit[l].rlim_max);
		snprintf(item, sizeof(item), "%s=%s:%s", shim_limits[l].name, soft, hard);
		at = shim_spec_put(buf, at, item);
	}
	if (at == 0)
		snprintf(buf, SHIM_SPEC_MAX, "%s", SHIM_SPEC_NONE);
}

/* A decimal number up to max, or "u" (RLIM_INFINITY) when unlimited is allowed. */
static int shim_spec_number(const char *s, const char *end, bool unlimited, uint64_t max,
			    uint64_t *out)
{
	uint64_t v = 0;

	if (unlimited && end - s == 1 && s[0] == 'u') {
		*out = RLIM_INFINITY;
		return 0;
	}
	if (s == end || end - s > 20)
		return -1;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9' || v > (max - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* "A:B" between s and end into *a and *b. */
static int shim_spec_pair(const char *s, const char *end, bool unlimited, uint64_t max, uint64_t *a,
			  uint64_t *b)
{
	const char *colon = memchr(s, ':', (size_t)(end - s));

	if (colon == NULL)
		return -1;
	return shim_spec_number(s, colon, unlimited, max, a) == 0 &&
			       shim_spec_number(colon + 1, end, unlimited, max, b) == 0
		       ? 0
		       : -1;
}

static int shim_spec_item(const char *s, const char *end, struct shim_spec *out)
{
	const char *eq = memchr(s, '=', (size_t)(end - s));
	uint64_t a, b;
	int l;

	if (eq == NULL)
		return -1;
	if (eq - s == 4 && memcmp(s, "user", 4) == 0) {
		if (out->set_user ||
		    shim_spec_pair(eq + 1, end, false, UINT32_MAX - 1, &a, &b) != 0)
			return -1;
		out->set_user = true;
		out->uid = (uid_t)a;
		out->gid = (gid_t)b;
		return 0;
	}
	for (l = 0; l < SHIM_LIMITS; l++)
		if (strlen(shim_limits[l].name) == (size_t)(eq - s) &&
		    memcmp(shim_limits[l].name, s, (size_t)(eq - s)) == 0)
			break;
	if (l == SHIM_LIMITS || out->set_limit[l] ||
	    shim_spec_pair(eq + 1, end, true, RLIM_INFINITY - 1, &a, &b) != 0 || a > b)
		return -1;
	out->set_limit[l] = true;
	out->limit[l].rlim_cur = (rlim_t)a;
	out->limit[l].rlim_max = (rlim_t)b;
	return 0;
}

int shim_spec_parse(const char *word, struct shim_spec *out)
{
	const char *s = word, *end;
	size_t len = strnlen(word, SHIM_SPEC_MAX);

	memset(out, 0, sizeof(*out));
	if (strcmp(word, SHIM_SPEC_NONE) == 0)
		return 0;
	if (len == 0 || len == SHIM_SPEC_MAX)
		goto bad;
	for (;;) {
		end = strchr(s, ',');
		if (end == NULL)
			end = s + strlen(s);
		if (shim_spec_item(s, end, out) != 0)
			goto bad;
		if (*end == '\0')
			return 0;
		s = end + 1;
	}
bad:
	memset(out, 0, sizeof(*out));
	errno = EINVAL;
	return -1;
}

/*
 * Empties the ambient set, and every set when the process is not root:
 * a change between two users other than root keeps what is permitted.
 */
static int shim_caps_drop(void)
{
	struct __user_cap_header_struct head = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];

	/* EINVAL: a kernel before ambient capabilities (4.3) has none to drop. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return -1;
	if (getuid() == 0 || geteuid() == 0)
		return 0;
	memset(none, 0, sizeof(none));
	return (int)syscall(SYS_capset, &head, none);
}

int shim_spec_apply(const struct shim_spec *s, const char **what)
{
	for (int l = 0; l < SHIM_LIMITS; l++) {
		if (s->set_limit[l] && setrlimit(shim_limits[l].resource, &s->limit[l]) != 0) {
			*what = shim_limits[l].name;
			return -1;
		}
	}
	if (s->set_user) {
		/* Groups first: once the uid is dropped, nothing else can be. */
		*what = "setgroups";
		if (setgroups(0, NULL) != 0)
			return -1;
		*what = "setgid";
		if (setresgid(s->gid, s->gid, s->gid) != 0)
			return -1;
		*what = "setuid";
		if (setresuid(s->uid, s->uid, s->uid) != 0)
			return -1;
	}
	*what = "capabilities";
	if (shim_caps_drop() != 0)
		return -1;
	/* Belt and braces: a uid 0 that could get root back must not exec as the agent. */
	*what = "setuid";
	if (s->set_user && s->uid != 0 &&
	    (setuid(0) == 0 || geteuid() != s->uid || getegid() != s->gid)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}
