use sendblue_webhooks::{reconcile, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    reconcile::run().await
}
