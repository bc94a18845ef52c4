//! Images per second of one augmented Fashion-MNIST training epoch at batch 64 (no model).
//!
//! Usage: `cargo run --release -p ipr-data --example throughput [DIR] [WORKERS]`
//! (default DIR: /usr/share/datasets/fashion-mnist, WORKERS: 1).

use std::sync::Arc;
use std::time::Instant;

use ipr_data::{FASHION_MNIST_DIR, Loader, LoaderConfig, Split, Transform, read_idx};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| FASHION_MNIST_DIR.to_owned());
    let workers = args.next().map_or(Ok(1), |w| w.parse())?;
    let start = Instant::now();
    let set = read_idx(&dir, Split::Train)?;
    let read_s = start.elapsed().as_secs_f64();

    let config = LoaderConfig {
        workers,
        ..LoaderConfig::train(64, 0)
    };
    let loader = Loader::new(Arc::new(set), Transform::fashion_mnist(), config)?;
    let start = Instant::now();
    let mut images = 0;
    for batch in loader.epoch(0) {
        images += batch?.labels.len();
    }
    let secs = start.elapsed().as_secs_f64();
    #[allow(clippy::print_stdout)]
    {
        println!("read {dir} (train split) in {read_s:.2} s");
        println!(
            "augmented epoch, batch 64, {workers} worker(s): {images} images in {secs:.2} s = {:.0} images/s",
            images as f64 / secs
        );
    }
    Ok(())
}
