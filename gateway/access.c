#include "gateway/access.h"
#include "common/endpoint.h"
#include "common/endpoint_list.h"
#include "gateway/broker_link.h"
#include "gateway/gateway.h"
#include "gateway/listen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest bearer token looked at: ours are 43 characters; anything much longer is
 * not one, and is not worth hashing. */
#define TOKEN_MAX 512

struct gateway_access_t {
    char *tokens_file;      /* NULL: no tokens */
    syn_tokens_t *tokens;   /* the file as last read successfully */
    bool basic;             /* --api-user and --api-password given */
    char user_hash[SYN_TOKEN_HASH_HEX];
    char password_hash[SYN_TOKEN_HASH_HEX];
};

gateway_access_t *gateway_access_new(const char *tokens_file, const char *user,
                                     const char *password, char *err, size_t errlen)
{
    gateway_access_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (tokens_file && tokens_file[0]) {
        self->tokens_file = strdup(tokens_file);
        self->tokens = self->tokens_file ? syn_tokens_load(tokens_file, err, errlen) : NULL;
        if (!self->tokens) {
            if (!self->tokens_file)
                snprintf(err, errlen, "out of memory");
            gateway_access_destroy(&self);
            return NULL;
        }
    }
    if (user && user[0] && password && password[0]) {
        /* Kept as hashes, compared as hashes: equal length, constant time. */
        self->basic = true;
        syn_token_hash(user, strlen(user), self->user_hash);
        syn_token_hash(password, strlen(password), self->password_hash);
    }
    return self;
}

void gateway_access_destroy(gateway_access_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_access_t *self = *self_p;
    syn_tokens_destroy(&self->tokens);
    free(self->tokens_file);
    free(self);
    *self_p = NULL;
}

bool gateway_access_enabled(const gateway_access_t *self)
{
    return self->tokens || self->basic;
}

int gateway_access_reload(gateway_access_t *self, size_t *count, char *err, size_t errlen)
{
    *count = 0;
    if (!self->tokens_file)
        return 0;
    syn_tokens_t *fresh = syn_tokens_load(self->tokens_file, err, errlen);
    if (!fresh)
        return -1;
    syn_tokens_destroy(&self->tokens);
    self->tokens = fresh;
    *count = syn_tokens_count(fresh);
    return 0;
}

/* The one table of who may do what; a route missing here would need admin (the
 * switch has no default, so the compiler names a new route left out). */
int gateway_access_scope(gateway_match_t match, gateway_route_id_t id)
{
    if (match != GATEWAY_MATCH_OK)
        return SYN_SCOPE_READ;
    switch (id) {
    case GATEWAY_ROUTE_HEALTH:
    case GATEWAY_ROUTE_READY: /* for load balancers, like /health */
    /* The dashboard's files hold no data: the page must load to ask for a token. */
    case GATEWAY_ROUTE_UI_REDIRECT:
    case GATEWAY_ROUTE_UI_FILE:
    /* Tells whether tokens are on and whom the caller's names, nothing else: the page
     * learns it must ask for a token without a 401 in the browser's console. */
    case GATEWAY_ROUTE_WHOAMI:
        return 0;
    /* Counts by workflow and model: as much as the read routes tell, no more. */
    case GATEWAY_ROUTE_METRICS:
    case GATEWAY_ROUTE_WORKFLOW_LIST:
    case GATEWAY_ROUTE_WORKFLOW_GET:
    case GATEWAY_ROUTE_WORKFLOW_EXPORT:
    case GATEWAY_ROUTE_WORKFLOW_RUNS:
    case GATEWAY_ROUTE_EXECUTION_STATUS:
    case GATEWAY_ROUTE_EXECUTION_ACTIVE:
    case GATEWAY_ROUTE_EXECUTION_LIST:
    case GATEWAY_ROUTE_EXECUTION_GET:
    case GATEWAY_ROUTE_EXECUTION_STATE:
    case GATEWAY_ROUTE_EXECUTION_TIMELINE:
    case GATEWAY_ROUTE_PHASE_OUTPUT:
    case GATEWAY_ROUTE_ARTIFACT_LIST:
    case GATEWAY_ROUTE_ARTIFACT_GET:
    case GATEWAY_ROUTE_ARTIFACT_TAR:
    case GATEWAY_ROUTE_ARTIFACT_ZIP:
    case GATEWAY_ROUTE_SSE_EXECUTION:
    case GATEWAY_ROUTE_SSE_ACTIVITY:
    case GATEWAY_ROUTE_WORKERS:
    case GATEWAY_ROUTE_COSTS_SUMMARY: /* what the read routes' tokens and costs add up to */
    case GATEWAY_ROUTE_COSTS_EXECUTIONS:
    case GATEWAY_ROUTE_COSTS_EXECUTION:
    case GATEWAY_ROUTE_COSTS_SESSIONS:
    case GATEWAY_ROUTE_COSTS_SESSION:
    /* Answered by the gateway alone from the YAML it is sent: it changes nothing
     * and tells nothing about what the broker holds, so a read token (a CI job
     * checking workflow files) may. */
    case GATEWAY_ROUTE_WORKFLOW_VALIDATE:
        return SYN_SCOPE_READ;
    case GATEWAY_ROUTE_EXECUTION_START:
    case GATEWAY_ROUTE_EXECUTION_CANCEL:
    case GATEWAY_ROUTE_EXECUTION_PAUSE:
    case GATEWAY_ROUTE_EXECUTION_RESUME:
    case GATEWAY_ROUTE_EXECUTION_INJECT:
    case GATEWAY_ROUTE_EXECUTION_RERUN:
    case GATEWAY_ROUTE_EXECUTION_APPROVE:
    case GATEWAY_ROUTE_EXECUTION_REJECT:
        return SYN_SCOPE_RUN;
    case GATEWAY_ROUTE_WORKFLOW_CREATE:
    case GATEWAY_ROUTE_WORKFLOW_FROM_YAML:
    case GATEWAY_ROUTE_WORKFLOW_ARCHIVE:
    case GATEWAY_ROUTE_PHASE_UPDATE:
        return SYN_SCOPE_ADMIN;
    }
    return SYN_SCOPE_ADMIN;
}

const char *gateway_access_action(gateway_route_id_t id)
{
    switch (gateway_access_scope(GATEWAY_MATCH_OK, id)) {
    case SYN_SCOPE_RUN:
        return id == GATEWAY_ROUTE_EXECUTION_START || id == GATEWAY_ROUTE_EXECUTION_RERUN
                   ? "run executions"
                   : "control executions";
    case SYN_SCOPE_ADMIN:
        return "change workflows";
    default:
        return "read";
    }
}

/* "Bearer TOKEN" (scheme in any case, spaces after it): the token, or NULL. */
static const char *bearer_token(const char *header, size_t *len)
{
    if (!header || strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    const char *token = header + 6;
    while (*token == ' ' || *token == '\t')
        token++;
    size_t n = strcspn(token, " \t");
    if (n == 0 || n > TOKEN_MAX || token[n + strspn(token + n, " \t")] != '\0')
        return NULL;
    *len = n;
    return token;
}

/* The basic-auth user and password, when they are the configured ones. Both are
 * hashed and compared whatever the first comparison says. */
static bool basic_matches(const gateway_access_t *self, struct MHD_Connection *connection)
{
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password(connection, &password);
    bool ok = false;
    if (user && password) {
        char user_hash[SYN_TOKEN_HASH_HEX], password_hash[SYN_TOKEN_HASH_HEX];
        syn_token_hash(user, strlen(user), user_hash);
        syn_token_hash(password, strlen(password), password_hash);
        bool user_ok = syn_token_equal(user_hash, self->user_hash, SYN_TOKEN_HASH_HEX - 1);
        bool password_ok =
            syn_token_equal(password_hash, self->password_hash, SYN_TOKEN_HASH_HEX - 1);
        ok = user_ok & password_ok;
    }
    if (password) {
        memset(password, 0, strlen(password));
        MHD_free(password);
    }
    if (user)
        MHD_free(user);
    return ok;
}

/* Who sends the request: true with the token's name and scope, or the basic-auth
 * user (name NULL, admin); false when nobody known does. A bearer token offered
 * decides alone: an unknown one is not saved by a basic-auth header. */
static bool identify(const gateway_access_t *self, struct MHD_Connection *connection,
                     gateway_match_t match, const gateway_route_t *route, const char **name,
                     syn_scope_t *scope)
{
    const char *header = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION);
    size_t len = 0;
    const char *token = bearer_token(header, &len);
    if (!header && match == GATEWAY_MATCH_OK &&
        (route->id == GATEWAY_ROUTE_SSE_EXECUTION || route->id == GATEWAY_ROUTE_SSE_ACTIVITY)) {
        token = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "access_token");
        len = token ? strlen(token) : 0;
        if (len == 0 || len > TOKEN_MAX)
            token = NULL;
    }
    *name = NULL;
    *scope = 0;
    if (token)
        return self->tokens && syn_tokens_check(self->tokens, token, len, name, scope);
    /* The basic-auth user is admin: whatever the route needs, it may. */
    if (self->basic && header && basic_matches(self, connection)) {
        *scope = SYN_SCOPE_ADMIN;
        return true;
    }
    return false;
}

unsigned gateway_access_decide(const gateway_access_t *self, struct MHD_Connection *connection,
                               gateway_match_t match, const gateway_route_t *route,
                               char *detail, size_t detail_len)
{
    int need = gateway_access_scope(match, route->id);
    if (!gateway_access_enabled(self) || need == 0)
        return 0;
    const char *name;
    syn_scope_t scope;
    if (!identify(self, connection, match, route, &name, &scope)) {
        snprintf(detail, detail_len, "Not authenticated");
        return 401;
    }
    if ((int)scope >= need)
        return 0;
    snprintf(detail, detail_len, "Token %s may not %s", name ? name : "?",
             gateway_access_action(route->id));
    return 403;
}

json_t *gateway_access_whoami(const gateway_access_t *self, struct MHD_Connection *connection,
                              const gateway_route_t *route)
{
    if (!gateway_access_enabled(self))
        return json_pack("{s:n,s:s,s:b}", "name", "scope", "admin", "auth", 0);
    const char *name;
    syn_scope_t scope;
    if (!identify(self, connection, GATEWAY_MATCH_OK, route, &name, &scope))
        return json_pack("{s:n,s:n,s:b}", "name", "scope", "auth", 1);
    return json_pack("{s:s?,s:s,s:b}", "name", name, "scope", syn_scope_name(scope), "auth", 1);
}

void gateway_access_challenge(const gateway_access_t *self, struct MHD_Response *response)
{
    MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"syn\"");
    /* Offered too when it is configured, as the original service did, so a browser
     * asks for the user and password. */
    if (self->basic)
        MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"syn\", charset=\"UTF-8\"");
}

/* Both or neither of two flags; -1 with the line in err for one alone. */
static int pair(const char *a, const char *a_flag, const char *b, const char *b_flag, char *err,
                size_t errlen)
{
    bool has_a = a && a[0], has_b = b && b[0];
    if (has_a == has_b)
        return 0;
    snprintf(err, errlen, "%s is given without %s: give both, or neither",
             has_a ? a_flag : b_flag, has_a ? b_flag : a_flag);
    return -1;
}

int gateway_config_check(const gateway_config_t *config, char *err, size_t errlen)
{
    if (pair(config->tls_cert, "--tls-cert", config->tls_key, "--tls-key", err, errlen) != 0 ||
        pair(config->api_user, "--api-user", config->api_password, "--api-password", err,
             errlen) != 0 ||
        pair(config->curve_secret, "--curve-secret", config->broker_key, "--broker-key", err,
             errlen) != 0)
        return -1;
    struct sockaddr_storage addr; /* a malformed address is named as such first */
    if (syn_http_address_parse("--http", config->http, &addr, err, errlen) != 0)
        return -1;
    bool curve = config->curve_secret && config->curve_secret[0];
    bool auth = (config->api_tokens && config->api_tokens[0]) ||
                (config->api_user && config->api_user[0]);
    const char *no_key = "no --curve-secret is given";
    const char *key_remedy = "give --curve-secret and --broker-key, or --insecure to talk to "
                             "the broker in plain text";
    if (syn_endpoint_list_check("--broker", config->broker, curve || config->insecure, no_key,
                                key_remedy, err, errlen) != 0 ||
        syn_endpoint_list_check("--events", config->events, curve || config->insecure, no_key,
                                key_remedy, err, errlen) != 0 ||
        gateway_broker_link_check_pairs(config->broker, config->events, err, errlen) != 0 ||
        syn_endpoint_check("--http", config->http, true, auth || config->insecure,
                           "neither --api-tokens nor --api-user is given",
                           "give one of them, or --insecure to let anyone who can reach it "
                           "use the API",
                           err, errlen) != 0)
        return -1;
    return 0;
}
