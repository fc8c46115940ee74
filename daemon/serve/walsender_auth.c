// SPDX-License-Identifier: MIT
/*
 * The walsender endpoint's startup (walsender_int.h): SSLRequest and TLS, the startup
 * packet, the access rules, SCRAM-SHA-256 and the client certificate, AuthenticationOk.
 */
#include "serve/walsender_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/hba.h"
#include "common/log.h"
#include "common/scram.h"
#include "net/tls.h"
#include "serve/pgwire.h"

/* ---- startup ---- */

static void sb_host(const struct standby *sb, char *host, size_t len)
{
	const struct sockaddr *sa = (const struct sockaddr *)&sb->sa;

	snprintf(host, len, "?");
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host,
			  (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
			  (socklen_t)len);
}

/* A refusal of the authentication step: counted, logged and answered in PostgreSQL's
 * words (auth.c auth_failed()), with @sqlstate 28P01 or 28000. */
static void sb_auth_failed(struct standby *sb, const char *sqlstate, const char *what,
			   const char *detail)
{
	sb->s->refused++;
	log_log("%s authentication failed for user \"%s\" from %s", what, sb->user, sb->addr);
	if (detail && detail[0])
		log_detail("%s", detail);
	sb_error(sb, "FATAL", sqlstate, "%s authentication failed for user \"%s\"", what, sb->user);
}

/*
 * The access rules: role standby, the startup's user as node name, the client
 * certificate's name if any, TLS or not.  Returns the rule's method, or -1 when refused
 * (answered).
 */
static int sb_admitted(struct standby *sb)
{
	struct serve *s = sb->s;
	struct hba_request req = { .role = HBA_ROLE_STANDBY,
				   .node_name = sb->user,
				   .cert_name = sb->cert_name[0] ? sb->cert_name : NULL,
				   .tls = sb->tls != NULL,
				   .addr = (const struct sockaddr *)&sb->sa };
	struct hba_match match = { 0 };
	char host[INET6_ADDRSTRLEN], why[768];
	const char *encryption = sb->tls ? "SSL encryption" : "no encryption";

	if (s->hba && hba_match(s->hba, &req, &match) == HBA_ALLOW)
		return (int)match.rule->method;
	s->refused++;
	s->hba_refused++;
	sb_host(sb, host, sizeof(host));
	hba_format_refusal(s->hba, &req, &match, why, sizeof(why));
	log_log("refused standby connection from %s: %s", sb->addr, why);
	/* PostgreSQL's words (auth.c ClientAuthentication()), so the standby logs them. */
	if (match.rule)
		sb_error(sb, "FATAL", "28000",
			 "pg_hba.conf rejects replication connection for host \"%s\", user \"%s\", "
			 "%s",
			 host, sb->user, encryption);
	else
		sb_error(sb, "FATAL", "28000",
			 "no pg_hba.conf entry for replication connection from host \"%s\", user "
			 "\"%s\", %s",
			 host, sb->user, encryption);
	return -1;
}

static void sb_auth_ok(struct standby *sb);

/*
 * SCRAM-SHA-256: offer the mechanisms (with channel binding when over TLS, as
 * PostgreSQL's SCRAM-SHA-256-PLUS) and wait for the SASLInitialResponse.
 */
static void sb_sasl_begin(struct standby *sb)
{
	static const char *const mechs[] = { SCRAM_MECHANISM_PLUS, SCRAM_MECHANISM };
	bool plus;

	sb->scram = calloc(1, sizeof(*sb->scram));
	if (!sb->scram) {
		log_error("out of memory");
		sb_error(sb, "FATAL", "53200", "out of memory");
		return;
	}
	if (!sb->s->passwords)
		log_log("user \"%s\" must authenticate with scram-sha-256, but pg_password_file is "
			"not set: it will fail",
			sb->user);
	sb->cbind_len = sb->tls ? tls_conn_server_end_point(sb->tls, sb->cbind, sizeof(sb->cbind)) :
				  -ENOTSUP;
	plus = sb->cbind_len > 0;
	sb->state = SB_AUTH;
	sb->scram_first_done = false;
	pgwire_auth_sasl(&sb->out, plus ? 2 : 1, plus ? mechs : mechs + 1);
}

/* Why a SCRAM step failed (scram.h's results), in PostgreSQL's words and SQLSTATEs. */
static void sb_sasl_refuse(struct standby *sb, int err)
{
	const char *detail = sb->scram->detail;

	switch (err) {
	case -EPERM:
		sb_auth_failed(sb, "28P01", "password", detail);
		return;
	case -EACCES:
		sb->s->refused++;
		log_log("SCRAM channel binding failed for user \"%s\" from %s", sb->user, sb->addr);
		log_detail("%s", detail);
		sb_error(sb, "FATAL", "28000",
			 sb->scram_first_done ? "SCRAM channel binding check failed" :
						"SCRAM channel binding negotiation error");
		return;
	default:
		sb->s->refused++;
		log_log("malformed SCRAM message from %s (user \"%s\")", sb->addr, sb->user);
		log_detail("%s", detail);
		sb_error(sb, "FATAL", "08P01", "malformed SCRAM message");
		return;
	}
}

/* A SASLInitialResponse, then a SASLResponse ('p'). */
void sb_sasl(struct standby *sb, const struct pgwire_msg *m)
{
	struct scram_exchange *x = sb->scram;
	char out[SCRAM_MAX_MESSAGE];
	int n;

	if (!sb->scram_first_done) {
		struct pgwire_sasl_initial in;
		char nonce[SCRAM_NONCE_TEXT];
		bool plus;

		if (pgwire_parse_sasl_initial(m->body, m->len, &in) < 0) {
			log_log("invalid SASLInitialResponse from %s", sb->addr);
			sb_error(sb, "FATAL", "08P01", "malformed SCRAM message");
			return;
		}
		plus = !strcmp(in.mechanism, SCRAM_MECHANISM_PLUS) && sb->cbind_len > 0;
		if (!plus && strcmp(in.mechanism, SCRAM_MECHANISM)) {
			log_log("client %s selected an invalid SASL authentication mechanism",
				sb->addr);
			sb_error(sb, "FATAL", "08P01",
				 "client selected an invalid SASL authentication mechanism");
			return;
		}
		if (scram_nonce_new(nonce) < 0 ||
		    scram_exchange_begin(x, scram_passwords_find(sb->s->passwords, sb->user),
					 sb->user, plus, sb->cbind_len > 0 ? sb->cbind : NULL,
					 sb->cbind_len > 0 ? (size_t)sb->cbind_len : 0,
					 nonce) < 0) {
			log_error("could not generate random nonce");
			sb_error(sb, "FATAL", "XX000", "could not generate random nonce");
			return;
		}
		n = scram_exchange_first(x, in.data, in.len, out, sizeof(out));
		if (n < 0) {
			sb_sasl_refuse(sb, n);
			return;
		}
		sb->scram_first_done = true;
		pgwire_auth_sasl_step(&sb->out, false, out, (size_t)n);
		return;
	}
	n = scram_exchange_final(x, m->body, m->len, out, sizeof(out));
	if (n < 0) {
		sb_sasl_refuse(sb, n);
		return;
	}
	pgwire_auth_sasl_step(&sb->out, true, out, (size_t)n);
	scram_exchange_end(x);
	free(x);
	sb->scram = NULL;
	sb_auth_ok(sb);
}

static void sb_startup(struct standby *sb, const struct pgwire_startup *st)
{
	struct serve *s = sb->s;

	snprintf(sb->user, sizeof(sb->user), "%s", st->user);
	snprintf(sb->app, sizeof(sb->app), "%s", st->application_name);
	/* PostgreSQL's words and SQLSTATEs (postmaster.c ProcessStartupPacket()) */
	if (st->replication_invalid) {
		s->refused++;
		log_log("refused connection from %s: invalid value for parameter \"replication\"",
			sb->addr);
		sb_error(sb, "FATAL", "22023", "invalid value for parameter \"%s\": \"%s\"",
			 "replication", st->replication_value);
		return;
	}
	if (!st->user[0]) {
		s->refused++;
		log_log("refused connection from %s: no user name in its startup packet", sb->addr);
		sb_error(sb, "FATAL", "28000",
			 "no PostgreSQL user name specified in startup packet");
		return;
	}
	if (st->user_invalid) {
		s->refused++;
		log_log("refused connection from %s: a control character in its user name",
			sb->addr);
		sb->user[0] = '\0'; /* not shown in status as it is */
		sb_error(sb, "FATAL", "28000", "invalid user name: it holds a control character");
		return;
	}
	if (st->replication != PGWIRE_REPL_PHYSICAL) {
		s->refused++;
		log_log("refused connection from %s (user \"%s\"): not a physical replication "
			"connection",
			sb->addr, sb->user);
		if (st->replication == PGWIRE_REPL_LOGICAL)
			sb_error(sb, "FATAL", "0A000",
				 "logical replication is not supported: walship serves physical "
				 "replication only");
		else
			sb_error(sb, "FATAL", "0A000",
				 "walship serves physical replication only (replication=true), not "
				 "SQL sessions");
		return;
	}
	switch (sb_admitted(sb)) {
	case HBA_METHOD_TRUST:
		sb_auth_ok(sb);
		return;
	case HBA_METHOD_CERT:
		/* PostgreSQL's words (auth.c): a certificate is required, naming the user */
		if (!sb->cert_name[0]) {
			s->refused++;
			log_log("connection from %s (user \"%s\") requires a valid client "
				"certificate",
				sb->addr, sb->user);
			sb_error(sb, "FATAL", "28000",
				 "connection requires a valid client certificate");
		} else if (strcmp(sb->cert_name, sb->user)) {
			char detail[512];

			snprintf(detail, sizeof(detail),
				 "provided user name (%s) and authenticated user name (%s) do not "
				 "match",
				 sb->user, sb->cert_name);
			sb_auth_failed(sb, "28000", "certificate", detail);
		} else {
			sb_auth_ok(sb);
		}
		return;
	case HBA_METHOD_SCRAM:
		sb_sasl_begin(sb);
		return;
	default:
		return; /* refused, answered */
	}
}

/* Authenticated: AuthenticationOk and the session's parameters, ready for commands. */
static void sb_auth_ok(struct standby *sb)
{
	struct serve *s = sb->s;
	unsigned int authenticated = 0;
	uint32_t pid;

	/* At most SERVE_MAX_STANDBYS past their authentication (as max_wal_senders): else
	 * they could take the places kept for the connections still authenticating too. */
	for (const struct standby *o = s->standbys; o; o = o->next)
		authenticated += o != sb && !o->closing && !o->close_when_sent &&
				 o->state != SB_STARTUP && o->state != SB_AUTH;
	if (authenticated >= SERVE_MAX_STANDBYS) {
		s->refused++;
		log_log("connection from %s (user \"%s\") refused: %d standbys are connected",
			sb->addr, sb->user, SERVE_MAX_STANDBYS);
		sb_error(
			sb, "FATAL", "53300",
			"number of requested standby connections exceeds max_wal_senders (currently "
			"%d)",
			SERVE_MAX_STANDBYS);
		return;
	}
	pid = s->next_pid++;
	sb->pid = pid;

	log_log("replication connection authorized: user=%s application_name=%s host=%s%s%s",
		sb->user, sb->app, sb->addr, sb->tls ? " SSL enabled " : "",
		sb->tls ? sb->tls->version : "");
	sb->state = SB_QUERY;
	sb->connected_since = time(NULL);
	pgwire_auth_ok(&sb->out);
	/* What libpq and pg_receivewal look at (integer_datetimes: streamutil.c). */
	pgwire_parameter_status(&sb->out, "application_name", sb->app);
	pgwire_parameter_status(&sb->out, "client_encoding", "UTF8");
	pgwire_parameter_status(&sb->out, "DateStyle", "ISO, MDY");
	pgwire_parameter_status(&sb->out, "default_transaction_read_only", "on");
	pgwire_parameter_status(&sb->out, "in_hot_standby", "off");
	pgwire_parameter_status(&sb->out, "integer_datetimes", "on");
	pgwire_parameter_status(&sb->out, "IntervalStyle", "postgres");
	pgwire_parameter_status(&sb->out, "is_superuser", "off");
	pgwire_parameter_status(&sb->out, "server_encoding", "UTF8");
	pgwire_parameter_status(&sb->out, "server_version", "15.0 (walship)");
	pgwire_parameter_status(&sb->out, "session_authorization", sb->user);
	pgwire_parameter_status(&sb->out, "standard_conforming_strings", "on");
	pgwire_parameter_status(&sb->out, "TimeZone", "UTC");
	/* A pid unique among this daemon's standbys: the walreceiver names its temporary
	 * slot after it. */
	pgwire_backend_key(&sb->out, pid, (uint32_t)random());
	pgwire_ready(&sb->out);
}

/*
 * SSLRequest with tls = on: 'S', sent as it is, then the TLS handshake over what the
 * standby sends next (sb_tls_input()).  Returns 0, or -ENOMEM (the connection closed).
 */
static int sb_tls_begin(struct standby *sb)
{
	sb->tls = calloc(1, sizeof(*sb->tls));
	sb->tls_rx = malloc(TLS_RX_CAP);
	if (!sb->tls || !sb->tls_rx || tls_conn_init(sb->tls, &sb->s->tls) < 0) {
		free(sb->tls);
		sb->tls = NULL;
		log_error("out of memory");
		sb_close(sb);
		return -ENOMEM;
	}
	pgwire_put_byte(&sb->out, 'S');
	sb->out_plain = sb->out.len; /* an 'N' to a GSSENCRequest before it too */
	return 0;
}

/* Returns bytes consumed, 0 for more, -1 when the connection is done. */
int sb_rx_startup(struct standby *sb)
{
	struct pgwire_startup st;
	int n = pgwire_parse_startup(sb->rx, sb->rx_len, &st);

	if (n == 0)
		return 0;
	if (n == -EPROTONOSUPPORT) {
		sb_error(sb, "FATAL", "0A000",
			 "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
			 st.protocol >> 16, st.protocol & 0xffff);
		return -1;
	}
	if (n < 0) {
		log_log("invalid startup packet layout from %s: expected terminator as last byte",
			sb->addr);
		sb_close(sb);
		return -1;
	}
	switch (st.kind) {
	case PGWIRE_SSL:
	case PGWIRE_GSSENC: {
		bool *done = st.kind == PGWIRE_SSL ? &sb->ssl_done : &sb->gss_done;

		if (*done) {
			sb_close(sb);
			return -1;
		}
		*done = true;
		if (sb->rx_len > (size_t)n) { /* postmaster.c ProcessStartupPacket() */
			log_log("received unencrypted data after %s request from %s",
				st.kind == PGWIRE_SSL ? "SSL" : "GSSAPI encryption", sb->addr);
			sb_close(sb);
			return -1;
		}
		if (st.kind == PGWIRE_SSL && sb->s->tls_on)
			return sb_tls_begin(sb) < 0 ? -1 : n;
		pgwire_put_byte(&sb->out, 'N');
		return n;
	}
	case PGWIRE_CANCEL:
		sb_close(sb); /* nothing to cancel */
		return -1;
	case PGWIRE_STARTUP:
		/* a minor version past 3.0, or protocol options: what is served, then go on
		 * (postmaster.c SendNegotiateProtocolVersion()) */
		pgwire_negotiate_protocol(&sb->out, &st, sb->rx, (size_t)n);
		sb_startup(sb, &st);
		return n;
	}
	return n;
}
