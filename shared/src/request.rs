//! What the pipeline reads from a Lambda HTTP request besides its headers and body: the
//! invocation's deadline and the request's ids.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// The lease when a request carries no Lambda deadline (a test building requests by hand).
pub const FALLBACK_LEASE_MS: u64 = 30_000;

/// The claim's lease ends with the invocation: if this process dies mid-way, a retry after the
/// Lambda deadline may take the key over.
pub fn lease_until_ms(request: &Request, now_ms: u64) -> u64 {
    request
        .lambda_context_ref()
        .map(|context| context.deadline)
        .filter(|&deadline_ms| deadline_ms > now_ms)
        .unwrap_or(now_ms + FALLBACK_LEASE_MS)
}

/// API Gateway's id for the request (Function URLs have one too).
pub fn api_request_id(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.request_id.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Lambda's id for the invocation.
pub fn lambda_request_id(request: &Request) -> Option<&str> {
    request.lambda_context_ref().map(|context| context.request_id.as_str())
}
