use sendblue_webhooks::{run, Error, WebhookType};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(WebhookType::StatusCallback).await
}
