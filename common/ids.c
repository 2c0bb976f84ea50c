/* ids: validation of network names and labels, and random agent ids (libsodium). */
#include "ids.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static bool ids_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static bool ids_valid_name_len(const char *s, size_t len)
{
	if (len == 0 || len > TSR_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ids_name_char(s[i]))
			return false;
	return true;
}

bool ids_valid_name(const char *s)
{
	return s != NULL && ids_valid_name_len(s, strnlen(s, TSR_NAME_MAX + 1));
}

bool ids_valid_agent_id(const char *s)
{
	const char *dot;
	size_t len;

	if (s == NULL)
		return false;
	len = strnlen(s, TSR_AGENT_ID_MAX + 1);
	if (len > TSR_AGENT_ID_MAX)
		return false;
	dot = memchr(s, '.', len);
	if (dot == NULL || !ids_valid_name_len(s, (size_t)(dot - s)))
		return false;
	if (len - (size_t)(dot - s) - 1 != TSR_AGENT_ID_HEX)
		return false;
	for (const char *p = dot + 1; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int ids_agent_spoke(const char *agent_id, char *out, size_t outlen)
{
	const char *dot;
	size_t n;

	if (!ids_valid_agent_id(agent_id))
		return -1;
	dot = strchr(agent_id, '.');
	n = (size_t)(dot - agent_id);
	if (n + 1 > outlen)
		return -1;
	memcpy(out, agent_id, n);
	out[n] = '\0';
	return 0;
}

bool ids_valid_label_value(const char *s)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strnlen(s, TSR_LABEL_VALUE_MAX + 1);
	if (len == 0 || len > TSR_LABEL_VALUE_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

int ids_check_labels(const struct tsr_label *labels, size_t n, const char *what,
		     struct tsr_err *err)
{
	if (n > TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "at most %d %ss",
				   TSR_LABELS_MAX, what);
	for (size_t i = 0; i < n; i++) {
		if (!ids_valid_name(labels[i].key))
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "a %s key must be 1-%d characters of [A-Za-z0-9_-]",
					   what, TSR_NAME_MAX);
		if (!ids_valid_label_value(labels[i].value))
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "%s %s needs a value of 1-%d printable characters", what,
					   labels[i].key, TSR_LABEL_VALUE_MAX);
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[j].key, labels[i].key) == 0)
				return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
						   "%s %s given twice", what, labels[i].key);
	}
	return 0;
}

int ids_new_agent_id(const char *spoke_id, char *out, size_t outlen)
{
	unsigned char rnd[TSR_AGENT_ID_HEX / 2];
	char hex[TSR_AGENT_ID_HEX + 1];
	int n;

	if (!ids_valid_name(spoke_id))
		return -1;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	n = snprintf(out, outlen, "%s.%s", spoke_id, hex);
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}
