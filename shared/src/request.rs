//! What the pipeline reads from a Lambda HTTP request besides its headers and body: the
//! request's ids.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

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
