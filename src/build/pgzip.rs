//! Reproducible gzip on several threads, as pigz makes it: the input is cut
//! into blocks of [`BLOCK`] bytes, each block is deflated on its own (primed
//! with the last 32 KiB of the block before it, so matches still reach
//! across) and ends with a sync flush; the blocks are written in order,
//! then an empty final block and the gzip trailer. The bytes depend only on
//! the input, the block size and the level — not on the number of threads
//! or on timing — so the same layer always gives the same digest.
//!
//! A block whose bytes are already as dense as compression could make them
//! (an archive, a compressed asset, random data: byte entropy of at least
//! [`STORED_ENTROPY`] bits per byte) is stored, not deflated: deflate would
//! spend its time and save under 0.2 % of it. Which blocks are stored
//! depends only on their bytes, so the output stays reproducible.

use flate2::{Compress, Compression, FlushCompress, Status};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Input bytes per block.
pub const BLOCK: usize = 1024 * 1024;
/// The deflate window: what a block is primed with.
const WINDOW: usize = 32 * 1024;
/// The level layers are compressed with.
pub const LEVEL: u32 = 6;

/// Blocks with at least this many bits of entropy per byte are stored.
pub const STORED_ENTROPY: f64 = 7.985;

/// The gzip header: no name, no mtime, no extra flags, OS unknown (255).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// An empty final fixed-Huffman block.
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];

struct Job {
    index: u64,
    dictionary: Vec<u8>,
    data: Vec<u8>,
}

/// How many threads compress: the cores, at most 8.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Gzip all of `input` into `out` with `threads` threads (at least one),
/// calling `seen` with each block of the input in order (to hash it).
/// Returns the number of input bytes. Memory: about `4 × threads` blocks.
pub fn compress(
    input: &mut impl Read,
    out: &mut impl Write,
    threads: usize,
    level: u32,
    mut seen: impl FnMut(&[u8]),
) -> io::Result<u64> {
    let threads = threads.max(1);
    out.write_all(&HEADER)?;
    let mut crc = flate2::Crc::new();
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<(u64, io::Result<Vec<u8>>)>();
    let total = std::thread::scope(|scope| -> io::Result<u64> {
        for _ in 0..threads {
            let rx = Arc::clone(&job_rx);
            let tx = done_tx.clone();
            scope.spawn(move || loop {
                let job = match rx.lock().map(|r| r.recv()) {
                    Ok(Ok(job)) => job,
                    _ => return,
                };
                let result = deflate_block(&job, level);
                if tx.send((job.index, result)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut pending: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut next_out = 0u64;
        let mut sent = 0u64;
        let mut total = 0u64;
        let mut previous_tail: Vec<u8> = Vec::new();
        let mut write_ready =
            |pending: &mut BTreeMap<u64, Vec<u8>>, next_out: &mut u64| -> io::Result<()> {
                while let Some(bytes) = pending.remove(next_out) {
                    out.write_all(&bytes)?;
                    *next_out += 1;
                }
                Ok(())
            };
        let result = (|| -> io::Result<()> {
            loop {
                let data = read_block(input)?;
                if data.is_empty() {
                    break;
                }
                seen(&data);
                crc.update(&data);
                total += data.len() as u64;
                let tail_from = data.len().saturating_sub(WINDOW);
                let dictionary = std::mem::replace(&mut previous_tail, data[tail_from..].to_vec());
                // Bound the blocks in flight: wait for the oldest first.
                while sent - next_out >= 2 * threads as u64 + 2 {
                    let (i, r) = done_rx
                        .recv()
                        .map_err(|_| io::Error::other("a gzip thread died"))?;
                    pending.insert(i, r?);
                    write_ready(&mut pending, &mut next_out)?;
                }
                job_tx
                    .send(Job {
                        index: sent,
                        dictionary,
                        data,
                    })
                    .map_err(|_| io::Error::other("the gzip threads stopped"))?;
                sent += 1;
            }
            Ok(())
        })();
        drop(job_tx);
        result?;
        while next_out < sent {
            let (i, r) = done_rx
                .recv()
                .map_err(|_| io::Error::other("a gzip thread died"))?;
            pending.insert(i, r?);
            write_ready(&mut pending, &mut next_out)?;
        }
        Ok(total)
    })?;
    out.write_all(&LAST_BLOCK)?;
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&(total as u32).to_le_bytes())?;
    Ok(total)
}

/// Read up to [`BLOCK`] bytes (less only at the end).
fn read_block(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(BLOCK);
    input.take(BLOCK as u64).read_to_end(&mut data)?;
    Ok(data)
}

/// One block as raw deflate, ending with a sync flush (byte-aligned, not
/// final).
fn deflate_block(job: &Job, level: u32) -> io::Result<Vec<u8>> {
    let level = if entropy(&job.data) >= STORED_ENTROPY {
        0
    } else {
        level
    };
    let mut c = Compress::new(Compression::new(level), false);
    if !job.dictionary.is_empty() {
        c.set_dictionary(&job.dictionary)
            .map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(job.data.len() + job.data.len() / 16 + 64);
    let mut input = &job.data[..];
    loop {
        let before = c.total_in();
        if out.capacity() - out.len() < 64 {
            out.reserve(64 * 1024);
        }
        let status = c
            .compress_vec(input, &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        input = &input[(c.total_in() - before) as usize..];
        // Done when all input is in and the flush left room to spare.
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        if status == Status::StreamEnd {
            break;
        }
    }
    Ok(out)
}

/// Shannon entropy of the bytes, in bits per byte (0 to 8).
fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn gz(input: &[u8], threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let n = compress(&mut &input[..], &mut out, threads, LEVEL, |_| {}).unwrap();
        assert_eq!(n, input.len() as u64);
        out
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn same_bytes_whatever_the_threads() {
        // Text (compressible, matches across blocks) and noise.
        let mut input: Vec<u8> = (0..3 * BLOCK + 12345)
            .map(|i| b"openim-release layer "[i % 21])
            .collect();
        input.extend(pseudo_random(2 * BLOCK + 7, 42));
        let one = gz(&input, 1);
        for threads in [2, 3, 8] {
            assert_eq!(gz(&input, threads), one, "{threads} threads");
        }
        assert_eq!(gunzip(&one), input);
        assert!(one.len() < input.len() / 2, "{}", one.len());
    }

    /// The bytes are pinned: a change of the block size, level, header or
    /// deflate implementation changes every pushed layer's digest, so that
    /// registries get every layer again; this test says so first.
    #[test]
    fn the_output_is_pinned() {
        let mut input: Vec<u8> = (0..BLOCK + 4321)
            .map(|i| b"shared config of every service\n"[i % 30])
            .collect();
        input.extend(pseudo_random(BLOCK + 99, 9));
        let out = gz(&input, 2);
        assert_eq!(
            crate::oci::sha256_digest(&out),
            "sha256:fe0dec1888553f0686e63e8dfd041ebe4c4700f7b5a6a0b5cb6bebb7b4f5f11e",
            "{} bytes",
            out.len()
        );
    }

    #[test]
    fn dense_blocks_are_stored_and_the_rest_deflated() {
        let noise = pseudo_random(BLOCK, 3);
        assert!(entropy(&noise) > STORED_ENTROPY, "{}", entropy(&noise));
        let text: Vec<u8> = (0..BLOCK).map(|i| b"config: value\n"[i % 14]).collect();
        assert!(entropy(&text) < 4.0);
        // Noise, then text, then noise again: stored (a few bytes of
        // framing per 64 KiB), deflated, stored; it all reads back.
        let mut input = noise.clone();
        input.extend(&text);
        input.extend(pseudo_random(BLOCK / 2, 4));
        let out = gz(&input, 2);
        assert_eq!(gunzip(&out), input);
        let stored = BLOCK + BLOCK / 2;
        assert!(out.len() > stored, "{}", out.len());
        // The text block deflates to a few KiB.
        assert!(out.len() < stored + stored / 1000 + 8192, "{}", out.len());
        assert_eq!(entropy(&[]), 0.0);
    }

    #[test]
    fn empty_and_small_inputs_are_valid_gzip() {
        for input in [Vec::new(), b"x".to_vec(), pseudo_random(BLOCK, 1)] {
            let out = gz(&input, 4);
            assert_eq!(gunzip(&out), input);
            assert_eq!(&out[..3], &[0x1f, 0x8b, 8]);
        }
    }

    #[test]
    fn the_hash_callback_sees_the_input_in_order() {
        let input = pseudo_random(2 * BLOCK + 3, 7);
        let mut seen = Vec::new();
        compress(&mut &input[..], &mut Vec::new(), 3, LEVEL, |b| {
            seen.extend_from_slice(b)
        })
        .unwrap();
        assert_eq!(seen, input);
    }
}
