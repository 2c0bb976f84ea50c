/* agent_account: agent-user and agent-rlimit lines, and the spoke's privilege to apply them. */
#include "agent_account.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent_types.h"
#include "log.h"

#define ACCOUNT_NSS_BUF 16384 /* getpwnam_r/getgrnam_r scratch */

/* A decimal id below (uid_t)-1, which means "unchanged" to the kernel. */
static bool account_number(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (*s == '\0' || strlen(s) > 10)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v >= UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* The user called (or numbered) name: uid, primary gid and home; *found false if none. */
static int account_passwd(const char *name, bool numeric, uid_t uid, struct passwd *pw, char *buf,
			  bool *found, struct tsr_err *err)
{
	struct passwd *res = NULL;
	int e;

	e = numeric ? getpwuid_r(uid, pw, buf, ACCOUNT_NSS_BUF, &res)
		    : getpwnam_r(name, pw, buf, ACCOUNT_NSS_BUF, &res);
	if (e != 0 && e != ENOENT && e != ESRCH)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "user %s: %s", name,
				   strerror(e));
	*found = res != NULL;
	return 0;
}

static int account_group(const char *type_name, const char *name, gid_t *gid, char *buf,
			 struct tsr_err *err)
{
	struct group gr, *res = NULL;
	uint32_t n;
	int e;

	if (account_number(name, &n)) {
		*gid = (gid_t)n;
		return 0;
	}
	e = getgrnam_r(name, &gr, buf, ACCOUNT_NSS_BUF, &res);
	if (res == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-user %s: no group %s%s%s", type_name, name, e ? ": " : "",
				   e ? strerror(e) : "");
	*gid = gr.gr_gid;
	return 0;
}

int agent_account_user(struct shim_spec *spec, char **home, const char *type_name, const char *word,
		       struct tsr_err *err)
{
	char user[256], *colon, *buf = NULL;
	const char *group = NULL;
	struct passwd pw;
	uint32_t n = 0;
	bool numeric, found = false;
	int rc = -1;

	if (spec->set_user)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent-user %s set twice",
				   type_name);
	if (strnlen(word, sizeof(user)) == sizeof(user))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-user %s: USER[:GROUP] too long", type_name);
	memcpy(user, word, strlen(word) + 1);
	colon = strchr(user, ':');
	if (colon != NULL) {
		*colon = '\0';
		group = colon + 1;
	}
	buf = malloc(ACCOUNT_NSS_BUF);
	if (buf == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	numeric = account_number(user, &n);
	if (account_passwd(user, numeric, (uid_t)n, &pw, buf, &found, err) != 0)
		goto out;
	if (!found && !numeric) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "agent-user %s: no user %s",
			    type_name, user);
		goto out;
	}
	if (!found && group == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "agent-user %s: uid %s has no passwd entry: give its group (%s:GROUP)",
			    type_name, user, user);
		goto out;
	}
	spec->uid = found ? pw.pw_uid : (uid_t)n;
	spec->gid = found ? pw.pw_gid : 0;
	*home = strdup(found && pw.pw_dir[0] == '/' ? pw.pw_dir : "/");
	if (*home == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (group != NULL && account_group(type_name, group, &spec->gid, buf, err) != 0)
		goto out;
	if (spec->uid == 0 || spec->uid == geteuid() || spec->gid == 0) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "agent-user %s: %s would keep root's or the spoke's own authority; "
			    "give a user of the agents' own",
			    type_name, word);
		goto out;
	}
	spec->set_user = true;
	rc = 0;
out:
	if (rc != 0) {
		free(*home);
		*home = NULL;
	}
	free(buf);
	return rc;
}

static int account_rlim(const char *s, rlim_t *out)
{
	uint64_t v = 0;

	if (strcmp(s, "unlimited") == 0) {
		*out = RLIM_INFINITY;
		return 0;
	}
	if (*s == '\0' || strlen(s) > 18)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = (rlim_t)v;
	return 0;
}

int agent_account_limit(struct shim_spec *spec, const char *type_name, const char *resource,
			const char *soft, const char *hard, struct tsr_err *err)
{
	int l = shim_limit_find(resource);
	struct rlimit r;

	if (l < 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-rlimit %s: RESOURCE must be nproc, nofile or core",
				   type_name);
	if (spec->set_limit[l])
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-rlimit %s %s set twice", type_name, resource);
	if (account_rlim(soft, &r.rlim_cur) != 0 || account_rlim(hard, &r.rlim_max) != 0 ||
	    r.rlim_cur > r.rlim_max)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "agent-rlimit %s %s: want SOFT HARD, numbers or unlimited, "
				   "SOFT at most HARD",
				   type_name, resource);
	spec->set_limit[l] = true;
	spec->limit[l] = r;
	return 0;
}

/* Whether this process holds capability cap (CAP_*) in its effective set. */
static bool account_capable(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0)
		return false;
	return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

/* A limit this process could not give: above its own hard one, without CAP_SYS_RESOURCE. */
static int account_check_limits(const struct agent_type *ty, struct tsr_err *err)
{
	struct rlimit own;

	for (int l = 0; l < SHIM_LIMITS; l++) {
		if (!ty->spec.set_limit[l] ||
		    getrlimit(shim_limit_resource((enum shim_limit)l), &own) != 0 ||
		    ty->spec.limit[l].rlim_max <= own.rlim_max || account_capable(CAP_SYS_RESOURCE))
			continue;
		return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
				   "agent-rlimit %s %s: HARD is above the spoke's own hard limit, "
				   "which only CAP_SYS_RESOURCE may raise",
				   ty->name, shim_limit_name((enum shim_limit)l));
	}
	return 0;
}

int agent_account_check(const struct agent_types *t, struct tsr_err *err)
{
	bool may_switch = account_capable(CAP_SETUID) && account_capable(CAP_SETGID) &&
			  account_capable(CAP_KILL);

	for (size_t i = 0; i < t->n; i++) {
		const struct agent_type *ty = &t->types[i];

		if (account_check_limits(ty, err) != 0)
			return -1;
		if (ty->spec.set_user && !may_switch)
			return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
					   "agent-user %s: the spoke must run as root, or hold "
					   "CAP_SETUID, CAP_SETGID and CAP_KILL, to run agents "
					   "as another user",
					   ty->name);
		if (!ty->spec.set_user)
			log_warn("agent type %s runs as the spoke's own user (uid %u): its agents "
				 "can read the spoke's key and Valkey credentials and signal the "
				 "spoke and every agent; give it an agent-user line",
				 ty->name, (unsigned)geteuid());
	}
	return 0;
}
