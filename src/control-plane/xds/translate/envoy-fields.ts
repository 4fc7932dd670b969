/**
 * For each xDS message a translator reads: Envoy's names of the fields our .proto files
 * deliberately do not declare (by number, from the real protos; the test
 * unknown-fields.test.ts checks every entry against them), which of those change nothing a client
 * does (accepted with a note, and why), and precise reasons for some refused ones (what to change
 * on the control plane). Any other undeclared field, named here or not, is refused
 * (unknown-fields.ts). docs/control-planes.md has the same decisions as a table. Data only.
 */
import type { FieldTable } from './unknown-fields.js';

const NO_SOCKET = 'an API listener opens no socket (Envoy: with api_listener set, no other field but name should be)';
const NO_DOWNSTREAM = 'about the downstream connection, which an in-process API listener does not have';
const HEADERS = 'header manipulation (VirtualService headers) is not supported: remove it from the VirtualService';
const URL_REWRITE = 'URL rewriting (VirtualService rewrite.uri) is not supported: remove the rewrite';
const HOST_REWRITE = 'authority rewriting (VirtualService rewrite.authority) is not supported: remove the rewrite';
const MIRROR = 'traffic mirroring (VirtualService mirror) is not supported: remove the mirror';
const CORS = 'CORS (VirtualService corsPolicy) is not supported: remove the corsPolicy';
const RATE_LIMITS = 'rate limiting is not supported';
const HEDGE = 'request hedging is not supported';
const GRPC_TIMEOUT = 'sidecarless does not read the grpc-timeout header';
const STATS = 'statistics naming only: sidecarless\'s telemetry is its own';
const INFO = 'informational metadata: nothing sidecarless runs reads it';
const DNS = 'DNS settings have no effect on an EDS cluster';
const TRUST = 'trust comes from the mesh\'s own bundle (its X509Source), not from xDS';
const CERTS = 'certificates come from the mesh\'s own source, not from xDS';
const NO_HEALTH_CHECKS = 'active health checking is not supported (failure accrual is passive): remove the health checks';

export const LISTENER: FieldTable = {
  message: 'envoy.config.listener.v3.Listener',
  names: { 33: 'additional_addresses', 28: 'stat_prefix', 32: 'filter_chain_matcher', 5: 'per_connection_buffer_limit_bytes', 6: 'metadata', 7: 'deprecated_v1', 8: 'drain_type', 15: 'listener_filters_timeout', 17: 'continue_on_listener_filters_timeout', 10: 'transparent', 11: 'freebind', 13: 'socket_options', 12: 'tcp_fast_open_queue_length', 16: 'traffic_direction', 18: 'udp_listener_config', 20: 'connection_balance_config', 21: 'reuse_port', 29: 'enable_reuse_port', 22: 'access_log', 24: 'tcp_backlog_size', 34: 'max_connections_to_accept_per_socket_event', 26: 'bind_to_port', 27: 'internal_listener', 30: 'enable_mptcp', 31: 'ignore_global_conn_limit', 35: 'bypass_overload_manager' },
  noEffect: {
    ...Object.fromEntries(
      ['additional_addresses', 'per_connection_buffer_limit_bytes', 'deprecated_v1', 'drain_type', 'listener_filters_timeout', 'continue_on_listener_filters_timeout', 'transparent', 'freebind', 'socket_options', 'tcp_fast_open_queue_length', 'traffic_direction', 'udp_listener_config', 'connection_balance_config', 'reuse_port', 'enable_reuse_port', 'tcp_backlog_size', 'max_connections_to_accept_per_socket_event', 'bind_to_port', 'enable_mptcp', 'ignore_global_conn_limit', 'bypass_overload_manager'].map((n) => [n, NO_SOCKET]),
    ),
    stat_prefix: STATS,
    metadata: INFO,
  },
  reasons: {
    filter_chain_matcher: 'a client API listener has no filter chains',
    access_log: 'access logs from xDS are not supported: sidecarless logs through its own telemetry',
    internal_listener: 'internal listeners are not supported',
  },
};

export const API_LISTENER: FieldTable = { message: 'envoy.config.listener.v3.ApiListener', names: {} };

export const HCM: FieldTable = {
  message: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  names: { 1: 'codec_type', 31: 'scoped_routes', 6: 'add_user_agent', 7: 'tracing', 8: 'http_protocol_options', 9: 'http2_protocol_options', 44: 'http3_protocol_options', 10: 'server_name', 34: 'server_header_transformation', 48: 'scheme_header_transformation', 29: 'max_request_headers_kb', 24: 'stream_idle_timeout', 28: 'request_timeout', 41: 'request_headers_timeout', 12: 'drain_timeout', 26: 'delayed_close_timeout', 13: 'access_log', 54: 'access_log_flush_interval', 55: 'flush_access_log_on_new_request', 56: 'access_log_options', 14: 'use_remote_address', 46: 'original_ip_detection_extensions', 52: 'early_header_mutation_extensions', 25: 'internal_address_config', 21: 'skip_xff_append', 22: 'via', 15: 'generate_request_id', 32: 'preserve_external_request_id', 37: 'always_set_request_id_in_response', 16: 'forward_client_cert_details', 17: 'set_current_client_cert_details', 18: 'proxy_100_continue', 20: 'represent_ipv4_remote_address_as_ipv4_mapped_ipv6', 23: 'upgrade_configs', 30: 'normalize_path', 33: 'merge_slashes', 45: 'path_with_escaped_slashes_action', 36: 'request_id_extension', 38: 'local_reply_config', 39: 'strip_matching_host_port', 42: 'strip_any_host_port', 40: 'stream_error_on_invalid_http_message', 43: 'path_normalization_options', 47: 'strip_trailing_host_dot', 49: 'proxy_status_config', 50: 'typed_header_validation_config', 51: 'append_x_forwarded_port', 57: 'append_local_overload', 53: 'add_proxy_protocol_connection_state' },
  noEffect: Object.fromEntries(
    ['codec_type', 'http_protocol_options', 'http2_protocol_options', 'http3_protocol_options', 'server_name', 'server_header_transformation', 'scheme_header_transformation', 'max_request_headers_kb', 'request_headers_timeout', 'drain_timeout', 'delayed_close_timeout', 'use_remote_address', 'original_ip_detection_extensions', 'internal_address_config', 'skip_xff_append', 'forward_client_cert_details', 'set_current_client_cert_details', 'proxy_100_continue', 'represent_ipv4_remote_address_as_ipv4_mapped_ipv6', 'stream_error_on_invalid_http_message', 'proxy_status_config', 'append_local_overload', 'add_proxy_protocol_connection_state', 'access_log_flush_interval', 'flush_access_log_on_new_request'].map((n) => [n, NO_DOWNSTREAM]),
  ),
  reasons: {
    scoped_routes: 'scoped routes are not supported: use rds or route_config',
    tracing: 'tracing from xDS is not supported: sidecarless traces through its own telemetry options',
    access_log: 'access logs from xDS are not supported: sidecarless logs through its own telemetry',
    access_log_options: 'access logs from xDS are not supported',
    request_timeout: 'a listener-wide request timeout is not supported: set the route\'s timeout (VirtualService timeout)',
    stream_idle_timeout: 'stream idle timeouts are not supported: set the route\'s timeout instead',
    upgrade_configs: 'protocol upgrades (WebSocket, CONNECT) are not supported',
    normalize_path: 'path normalization is not supported: sidecarless matches the path as the application sends it',
    merge_slashes: 'path normalization is not supported: sidecarless matches the path as the application sends it',
    path_with_escaped_slashes_action: 'path normalization is not supported: sidecarless matches the path as the application sends it',
    path_normalization_options: 'path normalization is not supported: sidecarless matches the path as the application sends it',
    strip_matching_host_port: 'host rewriting before matching is not supported',
    strip_any_host_port: 'host rewriting before matching is not supported',
    strip_trailing_host_dot: 'host rewriting before matching is not supported',
    via: HEADERS,
    add_user_agent: HEADERS,
    append_x_forwarded_port: HEADERS,
    early_header_mutation_extensions: HEADERS,
    generate_request_id: 'request IDs are not generated from xDS configuration',
    request_id_extension: 'request IDs are not generated from xDS configuration',
  },
};

export const HTTP_FILTER: FieldTable = {
  message: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter',
  names: { 5: 'config_discovery' },
  reasons: { config_discovery: 'filter config discovery (ECDS) is not supported: send the filter\'s typed_config inline' },
};

export const RDS: FieldTable = { message: 'envoy.extensions.filters.network.http_connection_manager.v3.Rds', names: {} };

/** HttpConnectionManager.common_http_protocol_options (the only place translators read one). */
export const HCM_HTTP_PROTOCOL_OPTIONS: FieldTable = {
  message: 'envoy.config.core.v3.HttpProtocolOptions',
  names: { 3: 'max_connection_duration', 2: 'max_headers_count', 5: 'headers_with_underscores_action', 6: 'max_requests_per_connection' },
  noEffect: { max_connection_duration: NO_DOWNSTREAM, max_headers_count: NO_DOWNSTREAM, headers_with_underscores_action: NO_DOWNSTREAM, max_requests_per_connection: NO_DOWNSTREAM },
};

export const CONFIG_SOURCE: FieldTable = {
  message: 'envoy.config.core.v3.ConfigSource',
  names: { 7: 'authorities', 1: 'path', 8: 'path_config_source', 2: 'api_config_source' },
  reasons: {
    authorities: 'xDS federation authorities are not supported',
    path: 'must be ads or self: sidecarless fetches everything over its one ADS stream',
    path_config_source: 'must be ads or self: sidecarless fetches everything over its one ADS stream',
    api_config_source: 'must be ads or self: sidecarless fetches everything over its one ADS stream',
  },
};
export const AGGREGATED_CONFIG_SOURCE: FieldTable = { message: 'envoy.config.core.v3.AggregatedConfigSource', names: {} };
export const SELF_CONFIG_SOURCE: FieldTable = { message: 'envoy.config.core.v3.SelfConfigSource', names: {} };
export const DURATION: FieldTable = { message: 'google.protobuf.Duration', names: {} };

export const ROUTE_CONFIGURATION: FieldTable = {
  message: 'envoy.config.route.v3.RouteConfiguration',
  names: { 9: 'vhds', 3: 'internal_only_headers', 4: 'response_headers_to_add', 5: 'response_headers_to_remove', 6: 'request_headers_to_add', 8: 'request_headers_to_remove', 10: 'most_specific_header_mutations_wins', 7: 'validate_clusters', 11: 'max_direct_response_body_size_bytes', 12: 'cluster_specifier_plugins', 13: 'request_mirror_policies', 14: 'ignore_port_in_host_matching', 15: 'ignore_path_parameters_in_path_matching', 17: 'metadata' },
  noEffect: {
    validate_clusters: 'only asks Envoy to check cluster names at load; sidecarless resolves each cluster by CDS',
    most_specific_header_mutations_wins: 'only orders header mutations, which are refused',
    max_direct_response_body_size_bytes: 'only bounds direct responses, which are refused',
    metadata: INFO,
  },
  reasons: {
    vhds: 'on-demand virtual hosts (VHDS) are not supported: send the virtual hosts in the RouteConfiguration',
    internal_only_headers: HEADERS,
    response_headers_to_add: HEADERS,
    response_headers_to_remove: HEADERS,
    request_headers_to_add: HEADERS,
    request_headers_to_remove: HEADERS,
    cluster_specifier_plugins: 'cluster specifier plugins are not supported',
    request_mirror_policies: MIRROR,
    ignore_port_in_host_matching: 'virtual hosts are matched on the host with its port; ignoring the port is not supported',
    ignore_path_parameters_in_path_matching: 'path parameters are matched as sent; ignoring them is not supported',
  },
};

export const VIRTUAL_HOST: FieldTable = {
  message: 'envoy.config.route.v3.VirtualHost',
  names: { 21: 'matcher', 4: 'require_tls', 5: 'virtual_clusters', 6: 'rate_limits', 7: 'request_headers_to_add', 13: 'request_headers_to_remove', 10: 'response_headers_to_add', 11: 'response_headers_to_remove', 8: 'cors', 14: 'include_request_attempt_count', 19: 'include_attempt_count_in_response', 20: 'retry_policy_typed_config', 17: 'hedge_policy', 23: 'include_is_timeout_retry_header', 18: 'per_request_buffer_limit_bytes', 22: 'request_mirror_policies', 24: 'metadata' },
  noEffect: {
    virtual_clusters: STATS,
    include_request_attempt_count: 'only adds Envoy\'s x-envoy-attempt-count header (istiod sets it on every virtual host); sidecarless does not add it',
    include_attempt_count_in_response: 'only adds Envoy\'s x-envoy-attempt-count response header; sidecarless does not add it',
    include_is_timeout_retry_header: 'only adds Envoy\'s x-envoy-is-timeout-retry header; sidecarless does not add it',
    per_request_buffer_limit_bytes: 'Envoy\'s buffer size; what a retry may replay is sidecarless\'s maxReplayBodyBytes',
    metadata: INFO,
  },
  reasons: {
    matcher: 'the generic matcher API is not supported: use routes',
    require_tls: 'require_tls is not supported (the mesh always speaks mTLS to its services)',
    rate_limits: RATE_LIMITS,
    request_headers_to_add: HEADERS,
    request_headers_to_remove: HEADERS,
    response_headers_to_add: HEADERS,
    response_headers_to_remove: HEADERS,
    cors: CORS,
    retry_policy_typed_config: 'retry extensions are not supported: use retry_policy',
    hedge_policy: HEDGE,
    request_mirror_policies: MIRROR,
  },
};

export const ROUTE: FieldTable = {
  message: 'envoy.config.route.v3.Route',
  names: { 3: 'redirect', 7: 'direct_response', 17: 'filter_action', 4: 'metadata', 5: 'decorator', 9: 'request_headers_to_add', 12: 'request_headers_to_remove', 10: 'response_headers_to_add', 11: 'response_headers_to_remove', 15: 'tracing', 16: 'per_request_buffer_limit_bytes', 19: 'stat_prefix' },
  noEffect: {
    metadata: INFO,
    decorator: 'only names the route\'s tracing span (istiod sets it on every route)',
    tracing: 'tracing sampling is sidecarless\'s own',
    per_request_buffer_limit_bytes: 'Envoy\'s buffer size; what a retry may replay is sidecarless\'s maxReplayBodyBytes',
    stat_prefix: STATS,
  },
  reasons: {
    redirect: 'HTTP redirects (VirtualService redirect) are not supported: remove the redirect',
    direct_response: 'direct responses (VirtualService directResponse) are not supported: remove the directResponse',
    filter_action: 'filter actions are not supported',
    request_headers_to_add: HEADERS,
    request_headers_to_remove: HEADERS,
    response_headers_to_add: HEADERS,
    response_headers_to_remove: HEADERS,
  },
};

export const ROUTE_MATCH: FieldTable = {
  message: 'envoy.config.route.v3.RouteMatch',
  names: { 12: 'connect_matcher', 15: 'path_match_policy', 8: 'grpc', 11: 'tls_context', 13: 'dynamic_metadata' },
  reasons: {
    connect_matcher: 'CONNECT requests are not routed by sidecarless',
    path_match_policy: 'URI template matching is not supported: use prefix, path, path_separated_prefix or safe_regex',
    grpc: 'a gRPC-only match is not supported (it would match non-gRPC requests too)',
    tls_context: 'matching on the downstream TLS context is not supported',
    dynamic_metadata: 'matching on dynamic metadata is not supported',
  },
};

export const HEADER_MATCHER: FieldTable = { message: 'envoy.config.route.v3.HeaderMatcher', names: {} };
export const STRING_MATCHER: FieldTable = {
  message: 'envoy.type.matcher.v3.StringMatcher',
  names: { 8: 'custom' },
  reasons: { custom: 'custom string matchers are not supported' },
};
export const REGEX_MATCHER: FieldTable = {
  message: 'envoy.type.matcher.v3.RegexMatcher',
  names: { 1: 'google_re2' },
  noEffect: { google_re2: 'RE2 program-size limits: sidecarless bounds patterns itself (regex.ts)' },
};
export const RUNTIME_FRACTIONAL_PERCENT: FieldTable = { message: 'envoy.config.core.v3.RuntimeFractionalPercent', names: {} };
export const FRACTIONAL_PERCENT: FieldTable = { message: 'envoy.type.v3.FractionalPercent', names: {} };

export const ROUTE_ACTION: FieldTable = {
  message: 'envoy.config.route.v3.RouteAction',
  names: { 2: 'cluster_header', 37: 'cluster_specifier_plugin', 39: 'inline_cluster_specifier_plugin', 20: 'cluster_not_found_response_code', 4: 'metadata_match', 5: 'prefix_rewrite', 32: 'regex_rewrite', 41: 'path_rewrite_policy', 6: 'host_rewrite_literal', 7: 'auto_host_rewrite', 29: 'host_rewrite_header', 35: 'host_rewrite_path_regex', 38: 'append_x_forwarded_host', 24: 'idle_timeout', 40: 'early_data_policy', 33: 'retry_policy_typed_config', 30: 'request_mirror_policies', 11: 'priority', 13: 'rate_limits', 14: 'include_vh_rate_limits', 15: 'hash_policy', 17: 'cors', 23: 'max_grpc_timeout', 28: 'grpc_timeout_offset', 25: 'upgrade_configs', 34: 'internal_redirect_policy', 26: 'internal_redirect_action', 31: 'max_internal_redirects', 27: 'hedge_policy' },
  noEffect: { include_vh_rate_limits: 'only concerns rate limits, which are refused' },
  reasons: {
    cluster_header: 'a cluster named by a request header is not supported: use cluster or weighted_clusters',
    cluster_specifier_plugin: 'cluster specifier plugins are not supported: use cluster or weighted_clusters',
    inline_cluster_specifier_plugin: 'cluster specifier plugins are not supported: use cluster or weighted_clusters',
    cluster_not_found_response_code: 'not supported: a route to a cluster the mesh does not have fails with the mesh\'s own error',
    metadata_match: 'subset selection by endpoint metadata is not supported (istiod\'s subsets arrive as clusters of their own)',
    prefix_rewrite: URL_REWRITE,
    regex_rewrite: URL_REWRITE,
    path_rewrite_policy: URL_REWRITE,
    host_rewrite_literal: HOST_REWRITE,
    auto_host_rewrite: HOST_REWRITE,
    host_rewrite_header: HOST_REWRITE,
    host_rewrite_path_regex: HOST_REWRITE,
    append_x_forwarded_host: HEADERS,
    idle_timeout: 'per-route idle timeouts are not supported: set the route\'s timeout',
    early_data_policy: 'TLS early data is not supported',
    retry_policy_typed_config: 'retry extensions are not supported: use retry_policy',
    request_mirror_policies: MIRROR,
    priority: 'routing priorities are not supported',
    rate_limits: RATE_LIMITS,
    hash_policy: 'consistent-hash load balancing (DestinationRule consistentHash) is not supported: remove it',
    cors: CORS,
    max_grpc_timeout: GRPC_TIMEOUT,
    grpc_timeout_offset: GRPC_TIMEOUT,
    upgrade_configs: 'protocol upgrades (WebSocket, CONNECT) are not supported',
    internal_redirect_policy: 'internal redirects are not supported',
    internal_redirect_action: 'internal redirects are not supported',
    max_internal_redirects: 'internal redirects are not supported',
    hedge_policy: HEDGE,
  },
};

export const MAX_STREAM_DURATION: FieldTable = {
  message: 'envoy.config.route.v3.RouteAction.MaxStreamDuration',
  names: { 3: 'grpc_timeout_header_offset' },
  reasons: { grpc_timeout_header_offset: GRPC_TIMEOUT },
};

export const WEIGHTED_CLUSTER: FieldTable = {
  message: 'envoy.config.route.v3.WeightedCluster',
  names: { 2: 'runtime_key_prefix', 4: 'header_name' },
  noEffect: { runtime_key_prefix: 'no runtime: the weights as sent apply' },
  reasons: { header_name: 'weights from a request header are not supported' },
};

export const CLUSTER_WEIGHT: FieldTable = {
  message: 'envoy.config.route.v3.WeightedCluster.ClusterWeight',
  names: { 12: 'cluster_header', 3: 'metadata_match', 4: 'request_headers_to_add', 9: 'request_headers_to_remove', 5: 'response_headers_to_add', 6: 'response_headers_to_remove', 11: 'host_rewrite_literal' },
  reasons: {
    cluster_header: 'a cluster named by a request header is not supported',
    metadata_match: 'subset selection by endpoint metadata is not supported',
    request_headers_to_add: HEADERS,
    request_headers_to_remove: HEADERS,
    response_headers_to_add: HEADERS,
    response_headers_to_remove: HEADERS,
    host_rewrite_literal: HOST_REWRITE,
  },
};

export const RETRY_POLICY: FieldTable = {
  message: 'envoy.config.route.v3.RetryPolicy',
  names: { 13: 'per_try_idle_timeout', 4: 'retry_priority', 12: 'retry_options_predicates', 11: 'rate_limited_retry_back_off', 9: 'retriable_headers', 10: 'retriable_request_headers' },
  reasons: {
    per_try_idle_timeout: 'per-try idle timeouts are not supported: use per_try_timeout',
    retry_priority: 'retry priority extensions are not supported',
    retry_options_predicates: 'retry option predicates are not supported',
    rate_limited_retry_back_off: 'back-off from rate-limit response headers is not supported (Retry-After is honoured)',
    retriable_headers: 'retrying on response headers is not supported: use retry_on and retriable_status_codes',
    retriable_request_headers: 'retrying by request headers is not supported',
  },
};
export const RETRY_HOST_PREDICATE: FieldTable = { message: 'envoy.config.route.v3.RetryPolicy.RetryHostPredicate', names: {} };
export const RETRY_BACK_OFF: FieldTable = { message: 'envoy.config.route.v3.RetryPolicy.RetryBackOff', names: {} };

export const CLUSTER: FieldTable = {
  message: 'envoy.config.cluster.v3.Cluster',
  names: { 43: 'transport_socket_matches', 28: 'alt_stat_name', 38: 'cluster_type', 5: 'per_connection_buffer_limit_bytes', 33: 'load_assignment', 8: 'health_checks', 9: 'max_requests_per_connection', 46: 'upstream_http_protocol_options', 29: 'common_http_protocol_options', 13: 'http_protocol_options', 14: 'http2_protocol_options', 16: 'dns_refresh_rate', 44: 'dns_failure_refresh_rate', 39: 'respect_dns_ttl', 17: 'dns_lookup_family', 18: 'dns_resolvers', 45: 'use_tcp_for_dns_lookups', 53: 'dns_resolution_config', 55: 'typed_dns_resolver_config', 54: 'wait_for_warm_on_init', 20: 'cleanup_interval', 21: 'upstream_bind_config', 22: 'lb_subset_config', 23: 'ring_hash_lb_config', 52: 'maglev_lb_config', 34: 'original_dst_lb_config', 37: 'least_request_lb_config', 56: 'round_robin_lb_config', 27: 'common_lb_config', 25: 'metadata', 26: 'protocol_selection', 30: 'upstream_connection_options', 31: 'close_connections_on_host_health_failure', 32: 'ignore_health_on_host_removal', 40: 'filters', 41: 'load_balancing_policy', 42: 'lrs_server', 57: 'lrs_report_endpoint_metrics', 47: 'track_timeout_budgets', 48: 'upstream_config', 49: 'track_cluster_stats', 50: 'preconnect_policy', 51: 'connection_pool_per_downstream_connection' },
  noEffect: {
    alt_stat_name: STATS,
    track_timeout_budgets: STATS,
    track_cluster_stats: STATS,
    per_connection_buffer_limit_bytes: 'Envoy\'s buffer size: Node\'s flow control is its own',
    ...Object.fromEntries(['dns_refresh_rate', 'dns_failure_refresh_rate', 'respect_dns_ttl', 'dns_lookup_family', 'dns_resolvers', 'use_tcp_for_dns_lookups', 'dns_resolution_config', 'typed_dns_resolver_config'].map((n) => [n, DNS])),
    wait_for_warm_on_init: 'sidecarless always waits (bounded) for a cluster\'s endpoints before routing to it',
    cleanup_interval: 'only for ORIGINAL_DST clusters, which are refused',
    ring_hash_lb_config: 'only for RING_HASH, which is refused',
    maglev_lb_config: 'only for MAGLEV, which is refused',
    original_dst_lb_config: 'only for ORIGINAL_DST clusters, which are refused',
    metadata: INFO,
    lrs_report_endpoint_metrics: 'only for load reporting, which is refused',
    preconnect_policy: 'a connection-warming hint: sidecarless\'s pools open connections on demand',
  },
  reasons: {
    transport_socket_matches: 'transport_socket_matches (auto mTLS) is not supported: set an ISTIO_MUTUAL DestinationRule so istiod sends transport_socket',
    cluster_type: 'a cluster_type extension (aggregate, ...) is not supported: must be EDS',
    load_assignment: 'inline endpoints are not supported: endpoints come from EDS',
    health_checks: NO_HEALTH_CHECKS,
    max_requests_per_connection: 'a per-connection request limit is not supported',
    upstream_http_protocol_options: 'upstream HTTP protocol options are not supported',
    common_http_protocol_options: 'upstream HTTP protocol options (DestinationRule connectionPool.http) are not supported',
    http_protocol_options: 'upstream HTTP protocol options are not supported',
    http2_protocol_options: 'the deprecated http2_protocol_options is not read: say HTTP/2 with typed_extension_protocol_options (HttpProtocolOptions explicit_http_config.http2_protocol_options), as istiod does',
    upstream_bind_config: 'binding a source address is not supported',
    lb_subset_config: 'subset load balancing is not supported (istiod\'s subsets arrive as clusters of their own)',
    least_request_lb_config: 'least-request options are not supported (sidecarless\'s least-request is its own)',
    round_robin_lb_config: 'round-robin options (slow start) are not supported',
    common_lb_config: 'panic thresholds, zone-aware and locality-weighted balancing options (DestinationRule localityLbSetting) are not supported',
    protocol_selection: 'upstream protocol selection is not supported',
    upstream_connection_options: 'TCP keepalive options (DestinationRule connectionPool.tcp.tcpKeepalive) are not supported',
    close_connections_on_host_health_failure: NO_HEALTH_CHECKS,
    ignore_health_on_host_removal: NO_HEALTH_CHECKS,
    filters: 'upstream network filters are not supported',
    load_balancing_policy: 'typed load-balancing policies are not supported: use lb_policy (ROUND_ROBIN, LEAST_REQUEST, RANDOM)',
    lrs_server: 'load reporting (LRS) is not supported',
    upstream_config: 'custom upstream connection pools are not supported',
    connection_pool_per_downstream_connection: 'connection pools per downstream connection are not supported',
  },
};

const H2_SETTING = 'HTTP/2 settings of the upstream connection are the mesh\'s own (docs/grpc.md): remove it (DestinationRule connectionPool.http)';

/** A Cluster's typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]: only explicit HTTP/2 is read. */
export const UPSTREAM_HTTP_PROTOCOL_OPTIONS: FieldTable = {
  message: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  names: { 1: 'common_http_protocol_options', 2: 'upstream_http_protocol_options', 4: 'use_downstream_protocol_config', 5: 'auto_config', 6: 'http_filters', 7: 'header_validation_config' },
  reasons: {
    common_http_protocol_options: 'upstream HTTP protocol options (DestinationRule connectionPool.http: idle timeout, max requests per connection) are not supported',
    upstream_http_protocol_options: 'upstream HTTP protocol options (auto SNI, SAN validation) are not supported: the SPIFFE ID is checked on every connection',
    use_downstream_protocol_config: 'a client has no downstream protocol to follow: say HTTP/2 with explicit_http_config.http2_protocol_options, or send nothing for HTTP/1.1',
    auto_config: 'protocol auto-detection is not supported (a service declared HTTP/2 never falls back to HTTP/1.1): use explicit_http_config.http2_protocol_options',
    http_filters: 'upstream HTTP filters are not supported',
    header_validation_config: 'header validation extensions are not supported',
  },
};

export const EXPLICIT_HTTP_CONFIG: FieldTable = {
  message: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig',
  names: { 1: 'http_protocol_options', 3: 'http3_protocol_options' },
  reasons: {
    http_protocol_options: 'HTTP/1 options are not supported: send no typed_extension_protocol_options for an HTTP/1.1 upstream',
    http3_protocol_options: 'HTTP/3 upstreams are not supported',
  },
};

/** envoy.config.core.v3.Http2ProtocolOptions of an upstream: present, it says "speak h2"; any setting in it is refused. */
export const UPSTREAM_HTTP2_PROTOCOL_OPTIONS: FieldTable = {
  message: 'envoy.config.core.v3.Http2ProtocolOptions',
  names: { 1: 'hpack_table_size', 2: 'max_concurrent_streams', 3: 'initial_stream_window_size', 4: 'initial_connection_window_size', 5: 'allow_connect', 6: 'allow_metadata', 7: 'max_outbound_frames', 8: 'max_outbound_control_frames', 9: 'max_consecutive_inbound_frames_with_empty_payload', 10: 'max_inbound_priority_frames_per_stream', 11: 'max_inbound_window_update_frames_per_data_frame_sent', 12: 'stream_error_on_invalid_http_messaging', 13: 'custom_settings_parameters', 14: 'override_stream_error_on_invalid_http_message', 15: 'connection_keepalive', 16: 'use_oghttp2_codec' },
  noEffect: { use_oghttp2_codec: 'Envoy\'s choice of HTTP/2 codec' },
  reasons: {
    ...Object.fromEntries(['hpack_table_size', 'max_concurrent_streams', 'initial_stream_window_size', 'initial_connection_window_size', 'max_outbound_frames', 'max_outbound_control_frames', 'max_consecutive_inbound_frames_with_empty_payload', 'max_inbound_priority_frames_per_stream', 'max_inbound_window_update_frames_per_data_frame_sent', 'custom_settings_parameters', 'connection_keepalive'].map((n) => [n, H2_SETTING])),
    allow_connect: 'CONNECT over HTTP/2 is not supported',
    allow_metadata: 'HTTP/2 METADATA frames are not supported',
    stream_error_on_invalid_http_messaging: H2_SETTING,
    override_stream_error_on_invalid_http_message: H2_SETTING,
  },
};

export const EDS_CLUSTER_CONFIG: FieldTable = { message: 'envoy.config.cluster.v3.Cluster.EdsClusterConfig', names: {} };

export const OUTLIER_DETECTION: FieldTable = {
  message: 'envoy.config.cluster.v3.OutlierDetection',
  names: { 11: 'enforcing_consecutive_gateway_failure', 12: 'split_external_local_origin_errors', 13: 'consecutive_local_origin_failure', 14: 'enforcing_consecutive_local_origin_failure', 15: 'enforcing_local_origin_success_rate', 18: 'enforcing_failure_percentage_local_origin', 22: 'max_ejection_time_jitter', 23: 'successful_active_health_check_uneject_host', 24: 'monitors', 25: 'always_eject_one_host' },
  noEffect: {
    enforcing_consecutive_gateway_failure: 'only with consecutive_gateway_failure, which is refused',
    enforcing_consecutive_local_origin_failure: 'only with split_external_local_origin_errors, which is refused',
    enforcing_local_origin_success_rate: 'only with split_external_local_origin_errors, which is refused',
    enforcing_failure_percentage_local_origin: 'only with split_external_local_origin_errors, which is refused',
    successful_active_health_check_uneject_host: 'only with active health checks, which are refused',
  },
  reasons: {
    split_external_local_origin_errors: 'only consecutive-failure ejection is supported',
    consecutive_local_origin_failure: 'only consecutive-failure ejection is supported',
    max_ejection_time_jitter: 'ejection-time jitter is not supported',
    monitors: 'outlier detection monitors are not supported',
    always_eject_one_host: 'the mesh never ejects its last ready endpoint',
  },
};

export const CIRCUIT_BREAKERS: FieldTable = {
  message: 'envoy.config.cluster.v3.CircuitBreakers',
  names: { 2: 'per_host_thresholds' },
  reasons: { per_host_thresholds: 'circuit breaking is not supported' },
};
export const THRESHOLDS: FieldTable = {
  message: 'envoy.config.cluster.v3.CircuitBreakers.Thresholds',
  names: { 8: 'retry_budget', 6: 'track_remaining', 7: 'max_connection_pools' },
  noEffect: { track_remaining: STATS },
  reasons: { retry_budget: 'the retry budget is sidecarless\'s own (its retryBudget option)', max_connection_pools: 'circuit breaking is not supported' },
};

export const TRANSPORT_SOCKET: FieldTable = { message: 'envoy.config.core.v3.TransportSocket', names: {} };
export const UPSTREAM_TLS_CONTEXT: FieldTable = {
  message: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  names: { 3: 'allow_renegotiation', 4: 'max_session_keys', 5: 'enforce_rsa_key_usage' },
  noEffect: { max_session_keys: 'TLS session resumption is the mesh\'s own' },
  reasons: { allow_renegotiation: 'TLS renegotiation is never allowed (the mesh speaks TLS 1.3)', enforce_rsa_key_usage: 'not supported' },
};
export const COMMON_TLS_CONTEXT: FieldTable = {
  message: 'envoy.extensions.transport_sockets.tls.v3.CommonTlsContext',
  names: { 2: 'tls_certificates', 6: 'tls_certificate_sds_secret_configs', 9: 'tls_certificate_certificate_provider', 7: 'validation_context_sds_secret_config', 10: 'validation_context_certificate_provider', 15: 'key_log' },
  reasons: {
    tls_certificates: CERTS,
    tls_certificate_sds_secret_configs: CERTS,
    tls_certificate_certificate_provider: CERTS,
    validation_context_sds_secret_config: TRUST,
    validation_context_certificate_provider: TRUST,
    key_log: 'TLS key logging is never enabled from xDS',
  },
};
export const COMBINED_VALIDATION_CONTEXT: FieldTable = {
  message: 'envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.CombinedCertificateValidationContext',
  names: { 2: 'validation_context_sds_secret_config', 3: 'validation_context_certificate_provider' },
  reasons: { validation_context_sds_secret_config: TRUST, validation_context_certificate_provider: TRUST },
};
export const CERTIFICATE_VALIDATION_CONTEXT: FieldTable = {
  message: 'envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext',
  names: { 17: 'system_root_certs', 11: 'watched_directory', 8: 'allow_expired_certificate', 10: 'trust_chain_verification', 14: 'only_verify_leaf_cert_crl', 16: 'max_verify_depth' },
  reasons: {
    system_root_certs: TRUST,
    watched_directory: TRUST,
    allow_expired_certificate: 'expired certificates are never accepted',
    trust_chain_verification: 'the chain is always verified (ACCEPT_UNTRUSTED is never honoured)',
    only_verify_leaf_cert_crl: 'CRLs are not supported',
    max_verify_depth: 'the verification depth is the mesh\'s own',
  },
};
export const SUBJECT_ALT_NAME_MATCHER: FieldTable = { message: 'envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher', names: {} };

export const CLUSTER_LOAD_ASSIGNMENT: FieldTable = {
  message: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  names: { 5: 'named_endpoints' },
  reasons: { named_endpoints: 'named endpoints are not supported: give each endpoint its address' },
};
export const CLA_POLICY: FieldTable = { message: 'envoy.config.endpoint.v3.ClusterLoadAssignment.Policy', names: {} };
export const DROP_OVERLOAD: FieldTable = { message: 'envoy.config.endpoint.v3.ClusterLoadAssignment.Policy.DropOverload', names: {} };
export const LOCALITY_LB_ENDPOINTS: FieldTable = {
  message: 'envoy.config.endpoint.v3.LocalityLbEndpoints',
  names: { 9: 'metadata', 7: 'load_balancer_endpoints', 8: 'leds_cluster_locality_config', 6: 'proximity' },
  noEffect: { metadata: INFO, proximity: 'Envoy does not implement it either (not-implemented in the real protos)' },
  reasons: { load_balancer_endpoints: 'LEDS is not supported: list the endpoints in lb_endpoints', leds_cluster_locality_config: 'LEDS is not supported: list the endpoints in lb_endpoints' },
};
export const LOCALITY: FieldTable = { message: 'envoy.config.core.v3.Locality', names: {} };
export const LB_ENDPOINT: FieldTable = {
  message: 'envoy.config.endpoint.v3.LbEndpoint',
  names: { 5: 'endpoint_name' },
  reasons: { endpoint_name: 'named endpoints are not supported: give each endpoint its address' },
};
export const ENDPOINT: FieldTable = {
  message: 'envoy.config.endpoint.v3.Endpoint',
  names: { 2: 'health_check_config', 4: 'additional_addresses' },
  noEffect: {
    health_check_config: 'only for active health checks, which are refused on the Cluster',
    additional_addresses: 'only the first address is used; a dual-stack endpoint carries its other family here, and the first is a complete endpoint',
  },
};
export const ADDRESS: FieldTable = {
  message: 'envoy.config.core.v3.Address',
  names: { 2: 'pipe', 3: 'envoy_internal_address' },
  reasons: { pipe: 'pipes are not supported: an endpoint needs a socket_address', envoy_internal_address: 'internal addresses are not supported: an endpoint needs a socket_address' },
};
export const SOCKET_ADDRESS: FieldTable = { message: 'envoy.config.core.v3.SocketAddress', names: {} };

// The server Listener istiod sends for xds.istio.io/grpc/lds/inbound/IP:port (inbound.ts, rbac*.ts).
// Not the LISTENER / HCM tables: what a client API listener may ignore, a server may not. What
// would change what the policy sees (the peer's address, the path, the host, the headers, which
// connections the chain covers) or who gets in is refused (fail closed); only what truly changes
// nothing the mesh's server or its policy does is noted.
const SERVER_SOCKET = 'the server\'s socket is the application\'s own (sidecarless does not open it from xDS); nothing the policy sees depends on it';
const SERVER_HTTP = 'the server\'s HTTP handling is Node\'s own; nothing the policy sees depends on it';
const ONE_CHAIN = 'filter chain matching is not supported: the one filter chain applies to every connection';
const PATH_OWN = 'path normalization is sidecarless\'s own (dot segments removed, slashes merged, unreserved escapes decoded once, %2F refused: DESIGN.md "path handling"), and the policy judges that path; Envoy\'s options would judge another: remove it';
const HOST_OWN = 'the policy sees the Host as the client sent it (rbac-permission.ts); rewriting it before the policy is not supported';
const PEER_ADDRESS = 'the policy sees the connection\'s own peer address (gRFC A41); another source for it is not supported';
const SERVER_HEADERS = 'header manipulation on a server listener is not supported: the policy and the application see the headers as sent';
const SESSIONS = 'TLS session resumption is the mesh\'s own (a resumed session keeps its verified peer)';
const SHADOW = 'shadow rules only produce statistics in Envoy: not used';

export const INBOUND_LISTENER: FieldTable = {
  message: LISTENER.message,
  names: LISTENER.names,
  noEffect: {
    ...Object.fromEntries(
      ['per_connection_buffer_limit_bytes', 'deprecated_v1', 'drain_type', 'tcp_fast_open_queue_length', 'connection_balance_config', 'reuse_port', 'enable_reuse_port', 'tcp_backlog_size', 'max_connections_to_accept_per_socket_event', 'bind_to_port', 'enable_mptcp', 'ignore_global_conn_limit', 'bypass_overload_manager'].map((n) => [n, SERVER_SOCKET]),
    ),
    listener_filters_timeout: 'only with listener_filters, which are refused',
    continue_on_listener_filters_timeout: 'only with listener_filters, which are refused',
    traffic_direction: 'the name already says inbound',
    stat_prefix: STATS,
    metadata: INFO,
  },
  reasons: {
    additional_addresses: 'a server listener serves the one address in its name (gRFC A36); the policy would not cover the others',
    filter_chain_matcher: ONE_CHAIN,
    transparent: 'transparent sockets are not supported: they change the addresses the policy sees',
    freebind: 'freebind is not supported on a server listener',
    socket_options: 'socket options from xDS are not applied to the server\'s socket (they may change the addresses the policy sees): remove them',
    udp_listener_config: 'UDP (QUIC) server listeners are not supported',
    access_log: 'access logs from xDS are not supported: sidecarless logs through its own telemetry',
    internal_listener: 'internal listeners are not supported',
  },
};

export const INBOUND_HCM: FieldTable = {
  message: HCM.message,
  names: HCM.names,
  noEffect: {
    ...Object.fromEntries(
      ['codec_type', 'http2_protocol_options', 'http3_protocol_options', 'max_request_headers_kb', 'stream_idle_timeout', 'request_timeout', 'request_headers_timeout', 'drain_timeout', 'delayed_close_timeout', 'proxy_100_continue', 'stream_error_on_invalid_http_message', 'append_local_overload'].map((n) => [n, SERVER_HTTP]),
    ),
    server_name: 'only names Envoy in its Server response header',
    server_header_transformation: 'only about Envoy\'s Server response header',
    proxy_status_config: 'only about Envoy\'s Proxy-Status response header',
    use_remote_address: 'the policy sees the connection\'s own peer address whatever this says (gRFC A41: X-Forwarded-For is never trusted)',
    skip_xff_append: 'sidecarless does not append to X-Forwarded-For either',
    set_current_client_cert_details: 'only with forward_client_cert_details, which is refused',
    access_log_flush_interval: 'only for access logs, which are refused',
    flush_access_log_on_new_request: 'only for access logs, which are refused',
    add_proxy_protocol_connection_state: 'only with the PROXY protocol, which is refused',
  },
  reasons: {
    scoped_routes: 'a server listener needs an inline route_config',
    http_protocol_options: 'HTTP/1 options (a default Host for HTTP/1.0, absolute URLs, ...) may change what the policy sees: not supported on a server listener',
    tracing: 'tracing from xDS is not supported: sidecarless traces through its own telemetry options',
    access_log: 'access logs from xDS are not supported: sidecarless logs through its own telemetry',
    access_log_options: 'access logs from xDS are not supported',
    upgrade_configs: 'protocol upgrades (WebSocket, CONNECT) are not supported on a server listener',
    normalize_path: PATH_OWN,
    merge_slashes: PATH_OWN,
    path_with_escaped_slashes_action: PATH_OWN,
    path_normalization_options: PATH_OWN,
    strip_matching_host_port: HOST_OWN,
    strip_any_host_port: HOST_OWN,
    strip_trailing_host_dot: HOST_OWN,
    original_ip_detection_extensions: PEER_ADDRESS,
    represent_ipv4_remote_address_as_ipv4_mapped_ipv6: PEER_ADDRESS,
    internal_address_config: 'internal address classification is not supported on a server listener',
    forward_client_cert_details: 'forwarding client certificate details is not supported: sidecarless removes the x-forwarded-client-cert a client sends, and the application gets the verified peer from the mesh',
    via: SERVER_HEADERS,
    add_user_agent: SERVER_HEADERS,
    scheme_header_transformation: SERVER_HEADERS,
    append_x_forwarded_port: SERVER_HEADERS,
    early_header_mutation_extensions: SERVER_HEADERS,
    typed_header_validation_config: 'header validation extensions are not supported: they would change which requests reach the policy',
    local_reply_config: 'custom local replies are not supported: a denied request gets the mesh\'s own 403',
    generate_request_id: 'request IDs are not generated from xDS configuration',
    request_id_extension: 'request IDs are not generated from xDS configuration',
  },
};

/** HttpConnectionManager.common_http_protocol_options of a server listener. */
export const INBOUND_HTTP_PROTOCOL_OPTIONS: FieldTable = {
  message: HCM_HTTP_PROTOCOL_OPTIONS.message,
  names: HCM_HTTP_PROTOCOL_OPTIONS.names,
  noEffect: { max_connection_duration: SERVER_HTTP, max_headers_count: SERVER_HTTP, max_requests_per_connection: SERVER_HTTP },
  reasons: { headers_with_underscores_action: 'dropping or refusing headers with underscores is not supported: the policy sees the headers as sent' },
};

export const INBOUND_ADDRESS: FieldTable = {
  message: ADDRESS.message,
  names: ADDRESS.names,
  reasons: { pipe: 'a server listener needs a socket_address (gRFC A36)', envoy_internal_address: 'a server listener needs a socket_address (gRFC A36)' },
};

export const FILTER_CHAIN: FieldTable = {
  message: 'envoy.config.listener.v3.FilterChain',
  names: { 4: 'use_proxy_proto', 5: 'metadata', 8: 'on_demand_configuration', 9: 'transport_socket_connect_timeout' },
  noEffect: { metadata: INFO, transport_socket_connect_timeout: 'the TLS handshake timeout is the mesh\'s own' },
  reasons: {
    use_proxy_proto: 'the PROXY protocol is not supported: it would change the peer address the policy sees',
    on_demand_configuration: 'on-demand filter chains are not supported',
  },
};

export const FILTER_CHAIN_MATCH: FieldTable = {
  message: 'envoy.config.listener.v3.FilterChainMatch',
  names: { 4: 'address_suffix', 5: 'suffix_len', 12: 'source_type', 13: 'direct_source_prefix_ranges' },
  reasons: { address_suffix: ONE_CHAIN, suffix_len: ONE_CHAIN, source_type: ONE_CHAIN, direct_source_prefix_ranges: ONE_CHAIN },
};

export const NETWORK_FILTER: FieldTable = {
  message: 'envoy.config.listener.v3.Filter',
  names: { 5: 'config_discovery' },
  reasons: { config_discovery: 'filter config discovery (ECDS) is not supported: send the HttpConnectionManager inline' },
};

export const DOWNSTREAM_TLS_CONTEXT: FieldTable = {
  message: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  names: { 4: 'session_ticket_keys', 5: 'session_ticket_keys_sds_secret_config', 6: 'session_timeout', 7: 'disable_stateless_session_resumption', 8: 'ocsp_staple_policy', 9: 'full_scan_certs_on_sni_mismatch', 10: 'disable_stateful_session_resumption' },
  noEffect: {
    session_ticket_keys: SESSIONS,
    session_ticket_keys_sds_secret_config: SESSIONS,
    session_timeout: SESSIONS,
    disable_stateless_session_resumption: SESSIONS,
    disable_stateful_session_resumption: SESSIONS,
    ocsp_staple_policy: 'only about stapling OCSP responses to the server\'s certificate, which comes from the mesh\'s own source',
    full_scan_certs_on_sni_mismatch: 'only chooses among several server certificates; the mesh has one',
  },
};

/** envoy.extensions.filters.http.rbac.v3.RBAC, the filter's config. */
export const RBAC_FILTER: FieldTable = {
  message: 'envoy.extensions.filters.http.rbac.v3.RBAC',
  names: { 3: 'shadow_rules_stat_prefix', 5: 'shadow_matcher', 7: 'track_per_rule_stats' },
  noEffect: { shadow_rules_stat_prefix: STATS, shadow_matcher: SHADOW, track_per_rule_stats: STATS },
};

export const RBAC_RULES: FieldTable = {
  message: 'envoy.config.rbac.v3.RBAC',
  names: { 3: 'audit_logging_options' },
  noEffect: { audit_logging_options: 'only configures Envoy\'s audit loggers; sidecarless records audit decisions through its own telemetry, and no option changes who gets in' },
};

export const RBAC_POLICY: FieldTable = { message: 'envoy.config.rbac.v3.Policy', names: {} };

export const PERMISSION: FieldTable = {
  message: 'envoy.config.rbac.v3.Permission',
  names: { 12: 'matcher', 13: 'uri_template' },
  reasons: { matcher: 'matcher extensions in permissions are not supported', uri_template: 'URI template permissions are not supported: write exact, prefix or suffix paths' },
};
export const PERMISSION_SET: FieldTable = { message: 'envoy.config.rbac.v3.Permission.Set', names: {} };

export const PRINCIPAL: FieldTable = {
  message: 'envoy.config.rbac.v3.Principal',
  names: { 12: 'filter_state' },
  reasons: { filter_state: 'filter state principals are not supported (a proxyless client has no Envoy filter state)' },
};
export const PRINCIPAL_SET: FieldTable = { message: 'envoy.config.rbac.v3.Principal.Set', names: {} };
export const PRINCIPAL_AUTHENTICATED: FieldTable = { message: 'envoy.config.rbac.v3.Principal.Authenticated', names: {} };
export const CIDR_RANGE: FieldTable = { message: 'envoy.config.core.v3.CidrRange', names: {} };
export const PATH_MATCHER: FieldTable = { message: 'envoy.type.matcher.v3.PathMatcher', names: {} };
