#[tokio::main]
async fn main() -> anyhow::Result<()> {
    warden::cli::run().await
}
