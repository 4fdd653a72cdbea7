use sendblue_webhooks::{forward, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    forward::run().await
}
