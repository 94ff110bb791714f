//! gzip for `/metrics`: which clients want it, and one gzip member built from two parts.
//!
//! A scrape body is the snapshot store's rendered text (large, unchanged between polls) followed
//! by the exporter's own metrics (small, different on every scrape). Compressing the whole body
//! on every scrape would cost more CPU than the rest of the scrape, so the store's part is
//! deflated once per rendered snapshot and kept in a [`GzipCache`]; each scrape deflates only the
//! own-metrics part and stitches the two into a single gzip member:
//!
//! ```text
//! gzip header | deflate(store part, sync flush) | deflate(own part, finish) | CRC32 | ISIZE
//! ```
//!
//! The sync flush ends the first raw deflate stream on a byte boundary with a non-final block,
//! so the second stream's blocks simply continue it: a decoder sees one deflate stream that
//! ends at the second part's final block. The CRC32 of the whole is combined from the two
//! parts' CRCs (`crc32fast`'s `combine`), so the cached part is never re-read. One member, not
//! two concatenated gzip files, because some clients decode only the first member.
//!
//! Why these crates: `flate2` (with its pure-Rust `miniz_oxide` backend, so no C zlib) does the
//! deflating; `crc32fast` is what flate2 itself uses for gzip CRCs.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::header::ACCEPT_ENCODING;
use axum::http::HeaderMap;
use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

/// Deflate level 1. At 100,000 series the store's part is about 10 MB and, with polls landing
/// every few hundred milliseconds at that size, it changes between most scrapes; the fastest
/// level still shrinks the repetitive exposition text about tenfold.
const LEVEL: Compression = Compression::fast();

/// The fixed gzip header: deflate, no flags, no modification time, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Whether `Accept-Encoding` asks for gzip: a `gzip` (or legacy `x-gzip`) coding with a
/// q-value above 0, or, when gzip is not named, `*` above 0. No header means identity. A coding
/// whose q-value does not parse counts as refused, so a malformed header gets plain text.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let mut quality = Some(1.0_f32);
            for parameter in parts {
                if let Some((name, value)) = parameter.split_once('=') {
                    if name.trim().eq_ignore_ascii_case("q") {
                        quality = parse_quality(value.trim());
                    }
                }
            }
            let accepted = quality.is_some_and(|q| q > 0.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(gzip.unwrap_or(false) || accepted);
            } else if coding == "*" {
                any = Some(accepted);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// An RFC 9110 qvalue: `0`, `1` or a decimal of up to three digits between them.
fn parse_quality(text: &str) -> Option<f32> {
    let valid =
        text.len() <= 5 && !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.');
    let quality: f32 = text.parse().ok().filter(|_| valid)?;
    (0.0..=1.0).contains(&quality).then_some(quality)
}

/// One rendered snapshot, deflated and ready to be the start of a gzip member.
pub struct DeflatedPart {
    /// The rendered text this was made from. Holding it keeps its allocation alive, so no
    /// later snapshot can reuse the address that identifies this one.
    source: Bytes,
    /// Raw deflate of `source`, ending with a sync flush (not final, byte-aligned).
    deflated: Bytes,
    /// CRC32 of `source`.
    crc: u32,
}

impl DeflatedPart {
    /// Deflates `source` for use as the first part of [`gzip_member`].
    pub fn new(source: Bytes) -> io::Result<Self> {
        let deflated = Bytes::from(deflate(&source, FlushCompress::Sync)?);
        Ok(Self {
            crc: crc32fast::hash(&source),
            deflated,
            source,
        })
    }

    /// Whether this was made from exactly `data`: the same allocation and length. The store
    /// hands out the same `Bytes` until something is published, so identity is the cheap and
    /// exact test; comparing contents would read 10 MB per scrape.
    fn made_from(&self, data: &Bytes) -> bool {
        self.source.as_ptr() == data.as_ptr() && self.source.len() == data.len()
    }
}

/// The deflated form of the latest rendered snapshot. It holds one entry: the store only ever
/// serves its latest render, so an older one will not be asked for again.
#[derive(Default)]
pub struct GzipCache {
    latest: Mutex<Option<Arc<DeflatedPart>>>,
    compressions: AtomicU64,
}

impl GzipCache {
    /// The cached part for `data`, if the last one stored was made from it.
    pub fn get(&self, data: &Bytes) -> Option<Arc<DeflatedPart>> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.as_ref().filter(|part| part.made_from(data)).cloned()
    }

    /// Deflates `data`, keeps the result as the latest and returns it. Scrapes racing on a new
    /// snapshot may each compress it once; that is rarer and cheaper than making them wait.
    pub fn insert(&self, data: Bytes) -> io::Result<Arc<DeflatedPart>> {
        let part = Arc::new(DeflatedPart::new(data)?);
        self.compressions.fetch_add(1, Ordering::Relaxed);
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(part.clone());
        Ok(part)
    }

    /// How many snapshots have been deflated so far (each cache miss is one).
    pub fn compressions(&self) -> u64 {
        self.compressions.load(Ordering::Relaxed)
    }
}

/// One gzip member whose content is `first`'s source followed by `tail`, as chunks to send in
/// order, and their total length.
pub fn gzip_member(first: &DeflatedPart, tail: &[u8]) -> io::Result<(Vec<Bytes>, usize)> {
    let mut end = deflate(tail, FlushCompress::Finish)?;
    let mut crc = crc32fast::Hasher::new_with_initial_len(first.crc, first.source.len() as u64);
    crc.combine(&crc32fast::Hasher::new_with_initial_len(
        crc32fast::hash(tail),
        tail.len() as u64,
    ));
    end.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the uncompressed length modulo 2^32, as RFC 1952 defines it.
    let total = (first.source.len() as u64).wrapping_add(tail.len() as u64);
    end.extend_from_slice(&(total as u32).to_le_bytes());
    let chunks = vec![
        Bytes::from_static(&GZIP_HEADER),
        first.deflated.clone(),
        Bytes::from(end),
    ];
    let length = chunks.iter().map(Bytes::len).sum();
    Ok((chunks, length))
}

/// Raw deflate (no zlib or gzip framing) of `input`, ended by `flush`: `Sync` for a part that
/// more blocks follow, `Finish` for the last.
fn deflate(input: &[u8], flush: FlushCompress) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(LEVEL, false);
    let mut out = Vec::with_capacity(input.len() / 8 + 64);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = usize::try_from(compress.total_in()).unwrap_or(input.len());
        let rest = input.get(consumed..).unwrap_or_default();
        let status = compress
            .compress_vec(rest, &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = usize::try_from(compress.total_in()).is_ok_and(|n| n == input.len());
        // A flush is complete once all input is in and the compressor stopped short of filling
        // the buffer: a full buffer may mean it has more to write.
        let done = match (flush, status) {
            (_, Status::StreamEnd) => true,
            (FlushCompress::Finish, _) => false,
            _ => all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use axum::http::HeaderValue;
    use flate2::read::GzDecoder;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                ACCEPT_ENCODING,
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        map
    }

    #[test]
    fn gzip_is_chosen_only_when_asked_for_with_a_positive_quality() {
        let cases: &[(&[&str], bool)] = &[
            (&[], false),
            // What Prometheus sends.
            (&["gzip"], true),
            (&["GZip"], true),
            (&["x-gzip"], true),
            (&["deflate, gzip;q=1.0, *;q=0.5"], true),
            (&["br;q=1.0, gzip;q=0.8"], true),
            (&["gzip;q=0"], false),
            (&["gzip; q=0.000"], false),
            (&["gzip;Q=0.001"], true),
            (&["identity"], false),
            (&["br, deflate"], false),
            (&["*"], true),
            (&["*;q=0"], false),
            (&["gzip;q=0, *"], false),
            (&["*;q=0, gzip"], true),
            (&["deflate", "gzip;q=0.5"], true),
            (&["gzip;q=2"], false),
            (&["gzip;q=abc"], false),
            (&["gzip;q="], false),
            (&[""], false),
        ];
        for (values, expected) in cases {
            assert_eq!(accepts_gzip(&headers(values)), *expected, "{values:?}");
        }
    }

    fn gunzip(chunks: &[Bytes]) -> Vec<u8> {
        let member: Vec<u8> = chunks.concat();
        let mut decoder = GzDecoder::new(member.as_slice());
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).expect("a valid gzip member");
        // A single-member decoder stops at the first member's end: nothing may follow it.
        let mut rest = Vec::new();
        decoder
            .into_inner()
            .read_to_end(&mut rest)
            .expect("read the remainder");
        assert!(
            rest.is_empty(),
            "{} bytes after the first member",
            rest.len()
        );
        out
    }

    #[test]
    fn the_two_parts_decode_as_one_member_equal_to_their_concatenation() {
        let store: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("metric{{page_id=\"{i}\"}} {}\n", i * 7).into_bytes())
            .collect();
        let own = b"# TYPE meta_messaging_exporter_build_info gauge\nmeta_messaging_exporter_build_info 1\n";
        let part = DeflatedPart::new(Bytes::from(store.clone())).expect("deflate");
        let (chunks, length) = gzip_member(&part, own).expect("gzip");
        assert_eq!(length, chunks.iter().map(Bytes::len).sum::<usize>());
        assert!(length < store.len() / 4, "{length} bytes");
        let mut expected = store;
        expected.extend_from_slice(own);
        assert_eq!(gunzip(&chunks), expected);
    }

    #[test]
    fn empty_parts_still_make_a_valid_member() {
        for (store, own) in [("", ""), ("", "own\n"), ("store\n", "")] {
            let part = DeflatedPart::new(Bytes::from(store)).expect("deflate");
            let (chunks, _) = gzip_member(&part, own.as_bytes()).expect("gzip");
            assert_eq!(gunzip(&chunks), format!("{store}{own}").as_bytes());
        }
    }

    #[test]
    fn the_cache_returns_the_same_part_until_the_snapshot_changes() {
        let cache = GzipCache::default();
        let first = Bytes::from(vec![b'a'; 10_000]);
        assert!(cache.get(&first).is_none());
        let part = cache.insert(first.clone()).expect("deflate");
        let again = cache.get(&first.clone()).expect("cached");
        assert!(Arc::ptr_eq(&part, &again));
        assert_eq!(cache.compressions(), 1);

        // Equal contents in another allocation are a different snapshot as far as the cache
        // knows, and so is a shorter view of the same allocation.
        let copy = Bytes::from(first.to_vec());
        assert!(cache.get(&copy).is_none());
        assert!(cache.get(&first.slice(..100)).is_none());
        cache.insert(copy.clone()).expect("deflate");
        assert!(cache.get(&first).is_none());
        assert!(cache.get(&copy).is_some());
        assert_eq!(cache.compressions(), 2);
    }
}
