//! The HTTP server itself: the connection cap and timeouts under slow and idle clients, gzip
//! on `/metrics`, and HEAD on every GET route, all over real sockets on tokio's paused clock:
//! header, idle and write deadlines pass in virtual time, so the timeouts under test are short
//! only to keep the numbers readable, and no test waits for them in real time.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use meta_messaging_exporter::app::Options;
use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::simulator::FakeGraphApi;
use meta_messaging_exporter::web::ServerSettings;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

use crate::helpers::{preamble, test_options, Scrape, TestExporter, TOKEN};

const OPEN: &str = "meta_messaging_exporter_http_connections_open";
const REJECTED: &str = "meta_messaging_exporter_http_connections_rejected_total";

/// An exporter polling one Page every second, with a fixed wall clock so the status page and
/// the timestamps in `/metrics` do not change from one request to the next.
async fn exporter(fake: &FakeGraphApi, server: ServerSettings) -> TestExporter {
    fake.simulate_page("PAGE1", TOKEN);
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n",
        preamble(fake)
    );
    let options = Options {
        server,
        clock: Arc::new(FixedClock::new(1_790_000_000)),
        ..test_options()
    };
    TestExporter::start_with_options(&yaml, options).await
}

/// Waits (at most 20 s) for the server to close `stream`: end of file or a reset.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0_u8; 1024];
    let wait = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .is_ok()
}

/// Sends a request for `/-/healthy` on `stream` and reads its whole response.
async fn healthy_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: exporter\r\n\r\n")
        .await
        .expect("send the request");
    let mut response = Vec::new();
    let mut buffer = [0_u8; 1024];
    let read = async {
        while !response.ends_with(b"Healthy\n") {
            let n = stream.read(&mut buffer).await.expect("read the response");
            assert!(n > 0, "closed before the response ended");
            response.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("a response within 20s");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(start_paused = true)]
async fn slow_header_clients_are_cut_off_and_a_fresh_scrape_gets_through_meanwhile() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let cap = 40;
    let exporter = exporter(
        &fake,
        ServerSettings {
            read_header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            max_connections: cap,
            ..ServerSettings::default()
        },
    )
    .await;
    // The harness's own keep-alive connection, which has served requests and so stays.
    let baseline = exporter.scrape().await.value(OPEN, &[]).expect("gauge");

    let mut attackers = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(exporter.address).await.expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: exp")
            .await
            .expect("send half a header");
        attackers.push(stream);
    }
    let full = exporter
        .wait_for("every slot taken", |scrape| {
            scrape
                .value(OPEN, &[])
                .is_some_and(|open| open >= cap as f64)
        })
        .await;
    assert!(
        full.value(REJECTED, &[("closed", "oldest_unserved")])
            .is_some_and(|evicted| evicted >= 150.0),
        "{}",
        full.text
    );

    // A scraper that connects now, while the attackers hold every slot, is served.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let response = fresh
        .get(format!("http://{}/metrics", exporter.address))
        .send()
        .await
        .expect("a fresh connection is admitted");
    assert_eq!(response.status(), 200);
    let scrape = Scrape::parse(response.text().await.expect("body"));
    assert!(scrape
        .value(OPEN, &[])
        .is_some_and(|open| open >= cap as f64));
    drop(fresh);

    for (index, stream) in attackers.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream).await,
            "attacker {index} still open"
        );
    }
    exporter
        .wait_for("the connection count back at its baseline", |scrape| {
            scrape.value(OPEN, &[]) == Some(baseline)
        })
        .await;
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn clients_holding_idle_keep_alive_connections_cannot_lock_out_a_fresh_scrape() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let cap = 12;
    let exporter = exporter(
        &fake,
        ServerSettings {
            read_header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
            write_timeout: Duration::from_secs(60),
            max_connections: cap,
            ..ServerSettings::default()
        },
    )
    .await;
    // Each holder sends one whole request, reads the answer, and keeps the connection open:
    // nothing about it is slow, so only the cap stands between it and every slot.
    let mut holders = Vec::new();
    for _ in 0..cap * 2 {
        let mut stream = TcpStream::connect(exporter.address).await.expect("connect");
        let response = healthy_on(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        holders.push(stream);
    }
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let response = fresh
        .get(format!("http://{}/metrics", exporter.address))
        .send()
        .await
        .expect("a fresh connection is admitted while idle holders fill the cap");
    assert_eq!(response.status(), 200);
    let scrape = Scrape::parse(response.text().await.expect("body"));
    assert!(
        scrape
            .value(REJECTED, &[("closed", "longest_idle")])
            .is_some_and(|closed| closed >= cap as f64),
        "{}",
        scrape.text
    );
    // The holders that came first, idle for longest, were the ones closed.
    assert!(closed_by_server(&mut holders[0]).await);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout_and_closes_at_the_idle_timeout()
{
    let fake = FakeGraphApi::start().await.expect("fake");
    let exporter = exporter(
        &fake,
        ServerSettings {
            read_header_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(2),
            ..ServerSettings::default()
        },
    )
    .await;
    let mut stream = TcpStream::connect(exporter.address).await.expect("connect");
    assert!(healthy_on(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Idle (in virtual time) for several header timeouts: the connection stays, since no
    // request is underway.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(healthy_on(&mut stream).await.starts_with("HTTP/1.1 200"));
    assert!(
        closed_by_server(&mut stream).await,
        "idle connection still open"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_partial_header_after_an_idle_wait_gets_only_the_header_timeout() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let exporter = exporter(
        &fake,
        ServerSettings {
            read_header_timeout: Duration::from_millis(500),
            // Longer than closed_by_server waits: only the header timeout can close it in time.
            idle_timeout: Duration::from_secs(600),
            ..ServerSettings::default()
        },
    )
    .await;
    let mut stream = TcpStream::connect(exporter.address).await.expect("connect");
    assert!(healthy_on(&mut stream).await.starts_with("HTTP/1.1 200"));
    stream
        .write_all(b"GET /-/healthy HT")
        .await
        .expect("send half a header");
    assert!(
        closed_by_server(&mut stream).await,
        "slow second header not cut off"
    );
    exporter.stop().await;
}

/// A connection to the exporter from `source` (any 127.0.0.0/8 address is loopback on Linux,
/// so each is another client to the exporter), with a small receive buffer so that little of
/// a response waits in this side's kernel.
async fn connect_from(source: &str, exporter: &TestExporter) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .bind(format!("{source}:0").parse().expect("address"))
        .expect("bind the source address");
    socket.connect(exporter.address).await.expect("connect")
}

/// A scrape on a fresh connection: `None` if the connection was refused (closed by the
/// server) instead of served.
async fn fresh_scrape(exporter: &TestExporter) -> Option<Scrape> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let response = client
        .get(format!("http://{}/metrics", exporter.address))
        .send()
        .await
        .ok()?;
    assert_eq!(response.status(), 200);
    Some(Scrape::parse(response.text().await.ok()?))
}

#[tokio::test(start_paused = true)]
async fn one_address_holds_at_most_its_share_of_connections_and_another_address_still_connects() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let settings = ServerSettings {
        // Longer than the test: only the per-client share can close a silent connection.
        read_header_timeout: Duration::from_secs(600),
        ..ServerSettings::default()
    };
    let share = settings.max_connections_per_client;
    assert!(
        share < settings.max_connections,
        "the overall cap is not what refuses"
    );
    let exporter = exporter(&fake, settings).await;

    let mut held = Vec::new();
    for _ in 0..share {
        held.push(connect_from("127.0.0.2", &exporter).await);
    }
    let mut one_too_many = connect_from("127.0.0.2", &exporter).await;
    assert!(
        closed_by_server(&mut one_too_many).await,
        "connection {} from one address was kept",
        share + 1
    );
    // Another address (the harness's scrapes come from 127.0.0.1) is served meanwhile.
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value(REJECTED, &[("closed", "per_client")]),
        Some(1.0),
        "{}",
        scrape.text
    );
    assert!(scrape
        .value(OPEN, &[])
        .is_some_and(|open| open > share as f64));
    let mut other = connect_from("127.0.0.3", &exporter).await;
    assert!(healthy_on(&mut other).await.starts_with("HTTP/1.1 200"));
    // The first ones from 127.0.0.2 are still open and served.
    assert!(healthy_on(&mut held[0]).await.starts_with("HTTP/1.1 200"));
    exporter.stop().await;
}

/// The exporter with one Page whose breakdown has `topics` values, so `/metrics` is large:
/// hyper keeps a response body of more than its write buffer (400 KiB) in progress until the
/// client has read most of it, as with a real exporter's megabytes of series.
async fn exporter_with_large_metrics(
    fake: &FakeGraphApi,
    topics: usize,
    server: ServerSettings,
) -> TestExporter {
    let rows: Vec<_> = (0..topics)
        .map(|topic| {
            serde_json::json!({
                "value": topic,
                "end_time": "1704268800",
                "recurring_notifications_topic": format!("a-topic-with-a-long-name-to-make-the-series-larger-{topic:06}"),
            })
        })
        .collect();
    fake.fixed_response(
        "PAGE1",
        TOKEN,
        serde_json::json!({"data": [{"name": "recurring_notifications_tokens", "period": "day", "values": rows}]}),
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1m\n    metrics:\n      - name: recurring_notifications_tokens\n        breakdowns: [recurring_notifications_topic]\n",
        preamble(fake)
    );
    let options = Options {
        server,
        ..test_options()
    };
    let exporter = TestExporter::start_with_options(&yaml, options).await;
    exporter
        .wait_for("every topic", |scrape| {
            scrape
                .series("meta_recurring_notifications_tokens", &[])
                .len()
                == topics
        })
        .await;
    exporter
}

#[tokio::test(start_paused = true)]
async fn more_slow_readers_than_the_cap_are_cut_off_and_normal_scrapes_get_through_long_before_the_write_timeout(
) {
    let fake = FakeGraphApi::start().await.expect("fake");
    let cap = 8;
    let settings = ServerSettings {
        max_connections: cap,
        // Far longer than the test waits: only the minimum write rate can free the slots.
        write_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
        ..ServerSettings::default()
    };
    let exporter = exporter_with_large_metrics(&fake, 5_000, settings).await;
    let size = exporter.scrape().await.text.len();
    assert!(size > 500 << 10, "/metrics is only {size} bytes");
    // The kernel takes a few MiB of a connection's output before a write blocks; a few
    // pipelined requests make one connection's answer larger than that.
    let requests = (16 << 20) / size + 1;
    let pipeline = "GET /metrics HTTP/1.1\r\nHost: exporter\r\n\r\n".repeat(requests);

    let started = tokio::time::Instant::now();
    let mut readers = JoinSet::new();
    for _ in 0..cap * 2 {
        let mut stream = connect_from("127.0.0.1", &exporter).await;
        stream
            .write_all(pipeline.as_bytes())
            .await
            .expect("send the requests");
        let mut byte = [0_u8; 1];
        if !matches!(stream.read(&mut byte).await, Ok(1)) {
            continue;
        }
        // Served: from now on it reads one byte every 100 ms, 10 bytes a second.
        readers.spawn(async move {
            while matches!(stream.read(&mut byte).await, Ok(1)) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    let mut refused = 0;
    let scrape = loop {
        if let Some(scrape) = fresh_scrape(&exporter).await {
            break scrape;
        }
        refused += 1;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no scrape got through in a minute of slow readers"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(refused > 0, "the slow readers never held every slot");
    let rejected = |closed| scrape.value(REJECTED, &[("closed", closed)]).unwrap_or(0.0);
    assert!(rejected("newcomer") >= 1.0, "{}", scrape.text);
    assert!(
        rejected("slow_reader") >= cap as f64 - 1.0,
        "{}",
        scrape.text
    );
    // Once cut off, they stay out of the way: scrapes keep being served.
    for _ in 0..3 {
        assert!(fresh_scrape(&exporter).await.is_some());
    }
    readers.abort_all();
    exporter.stop().await;
}

fn gunzip(body: &[u8]) -> String {
    // flate2's GzDecoder reads one member only, as some scrapers do.
    let mut decoder = flate2::read::GzDecoder::new(body);
    let mut text = String::new();
    decoder
        .read_to_string(&mut text)
        .expect("one valid gzip member");
    text
}

/// Every series of a scrape (name and labels, not values: a poll may land between two scrapes).
fn series(text: String) -> BTreeSet<String> {
    Scrape::parse(text)
        .samples
        .into_iter()
        .map(|(name, labels, _)| format!("{name}{labels:?}"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn metrics_are_gzipped_when_asked_and_decode_to_the_plain_text() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let exporter = exporter(&fake, ServerSettings::default()).await;
    exporter
        .wait_for("the first poll", |scrape| {
            scrape.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "PAGE1")],
            ) == Some(1.0)
        })
        .await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/metrics", exporter.address);

    let plain = http.get(&url).send().await.expect("plain scrape");
    let headers = plain.headers().clone();
    let plain = plain.bytes().await.expect("body");
    assert_eq!(headers.get("content-encoding"), None);
    assert_eq!(
        headers.get("vary").map(|v| v.as_bytes()),
        Some(&b"Accept-Encoding"[..])
    );
    assert_eq!(
        headers.get("content-length").map(|v| v.as_bytes()),
        Some(plain.len().to_string().as_bytes())
    );

    for accept in ["gzip", "deflate, gzip;q=0.9", "*"] {
        let response = http
            .get(&url)
            .header("accept-encoding", accept)
            .send()
            .await
            .expect("gzip scrape");
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body");
        assert_eq!(
            headers.get("content-encoding").map(|v| v.as_bytes()),
            Some(&b"gzip"[..]),
            "{accept}"
        );
        assert_eq!(
            headers.get("vary").map(|v| v.as_bytes()),
            Some(&b"Accept-Encoding"[..])
        );
        assert_eq!(
            headers.get("content-length").map(|v| v.as_bytes()),
            Some(body.len().to_string().as_bytes())
        );
        let text = gunzip(&body);
        assert!(text.contains("page_id=\"PAGE1\""), "{text}");
        let plain = String::from_utf8_lossy(&plain).into_owned();
        assert_eq!(series(text), series(plain), "{accept}");
    }

    for refused in ["gzip;q=0", "identity", "br"] {
        let response = http
            .get(&url)
            .header("accept-encoding", refused)
            .send()
            .await
            .expect("scrape");
        assert_eq!(
            response.headers().get("content-encoding"),
            None,
            "{refused}"
        );
        Scrape::parse(response.text().await.expect("body"));
    }
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn head_answers_every_get_route_with_its_length_and_no_body() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let exporter = exporter(&fake, ServerSettings::default()).await;
    let http = reqwest::Client::new();
    let length = |response: &reqwest::Response| -> usize {
        response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("a Content-Length")
    };
    for path in ["/", "/-/healthy", "/-/ready", "/metrics"] {
        let url = format!("http://{}{path}", exporter.address);
        // The exporter's own metrics (process memory, CPU) can change between two requests;
        // take a GET whose HEADs before and after agree, which a few tries give.
        let mut matched = None;
        for _ in 0..20 {
            let before = http.head(&url).send().await.expect("HEAD");
            let get = http.get(&url).send().await.expect("GET");
            let after = http.head(&url).send().await.expect("HEAD");
            assert_eq!(before.status(), 200, "{path}");
            assert_eq!(get.status(), 200, "{path}");
            let (before_length, after_length) = (length(&before), length(&after));
            let head_body = after.bytes().await.expect("HEAD body");
            assert!(head_body.is_empty(), "{path}: HEAD has a body");
            let get_body = get.bytes().await.expect("GET body");
            if before_length == after_length {
                matched = Some((before_length, get_body.len()));
                break;
            }
        }
        let (head_length, get_length) = matched.expect("two HEADs of equal length");
        assert_eq!(head_length, get_length, "{path}");
    }
    exporter.stop().await;
}
