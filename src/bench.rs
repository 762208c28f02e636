//! TODO: the load tool.

#[derive(clap::Args, Clone)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> crate::run::anyhow_like::Result<()> {
    Err("not yet".into())
}
