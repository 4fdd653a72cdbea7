//! The bare floor: a `lambda_http` function that answers 200 and does nothing else. What the
//! runtime, the event's parsing and the answer cost on their own.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async {
        Ok::<_, Error>(Response::new(Body::Text(r#"{"status":"OK"}"#.to_owned())))
    }))
    .await
}
