//! The bench's publishers: ATCS state messages for N intersections at rate R
//! (QoS 0), and call events at their own rate (QoS 1), each stamped with its
//! publish time so the screens can measure publish -> receipt latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::bus::BrokerUrl;

/// Counters shared with the report.
#[derive(Default)]
pub struct Published {
    pub telemetry: AtomicU64,
    pub calls: AtomicU64,
    /// Call events the broker acknowledged (PUBACK).
    pub calls_acked: AtomicU64,
}

fn client(url: &BrokerUrl, name: &str) -> (rumqttc::AsyncClient, rumqttc::EventLoop) {
    let id = format!(
        "bench-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut o = rumqttc::MqttOptions::new(id, url.host.clone(), url.port);
    o.set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(1000)
        .set_keep_alive(Duration::from_secs(30));
    rumqttc::AsyncClient::new(o, 20_000)
}

/// The call events one bench run publishes: ids known in advance for the
/// accounting. Each call rings and is answered by the next event (20 ms
/// later at 50 events/s), as a staffed call centre's are: a call left
/// ringing would be an alert (`call_unanswered`) 20 s later, and a bench of
/// unanswered calls a flood of them, which is not the room's normal load.
pub fn call_event_payload(city: &str, i: u64, event_id: &uuid::Uuid) -> (String, String) {
    let (call, kind) = (
        i / 2,
        if i.is_multiple_of(2) {
            "received"
        } else {
            "answered"
        },
    );
    let line = if call.is_multiple_of(3) { "119" } else { "112" };
    let ts = Utc::now()
        .with_timezone(&crate::domain::wib())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    (
        format!("city/{city}/calls/{line}"),
        format!(
            r#"{{"event_id":"{event_id}","call_id":"b{call}","ts":"{ts}","line":"{line}","type":"{kind}","priority":2}}"#
        ),
    )
}

/// A controller state message of junction `id` at `ts`, its readings moved by `k`.
pub fn state_payload(id: &str, ts: &str, k: u64) -> String {
    // Two decimals, as controllers report the degree of saturation.
    // 0.30-0.99, formatted as integers (float formatting was a visible share
    // of the bench's publishers).
    let s = |a: u64| format!("0.{}", 30 + (k + a) % 70);
    // Counts that move, as a working detector's do (the same count message
    // after message is a stuck detector, and flagged), with the digits of
    // the counts the bench always sent (47: prime, so that a junction's
    // count moves whatever the number of junctions).
    let f = |base: u64, a: u64| base + (k + a) % 47;
    format!(
        r#"{{"ts":"{ts}","intersection":"{id}","mode":"adaptive","plan":"pagi","cycle_s":120,"phase":{},"phase_elapsed_s":{},"approaches":[{{"id":"utara","green_s":40,"flow_vph":{},"queue_m":60,"saturation":{},"detector_ok":true}},{{"id":"selatan","green_s":35,"flow_vph":{},"queue_m":45,"saturation":{},"detector_ok":true}},{{"id":"timur","green_s":25,"flow_vph":{},"queue_m":30,"saturation":{},"detector_ok":true}},{{"id":"barat","green_s":20,"flow_vph":{},"queue_m":25,"saturation":{},"detector_ok":true}}]}}"#,
        k % 4 + 1,
        k % 30,
        f(1200, 0),
        s(0),
        f(1100, 17),
        s(17),
        f(700, 31),
        s(31),
        f(650, 53),
        s(53)
    )
}

/// The bench city's intersection number `i`.
pub fn intersection_id(i: usize) -> String {
    format!("j{i:04}")
}

/// Publishes telemetry at `rate` messages/s over `connections` connections until `stop`.
///
/// The due messages of each 2 ms tick leave in writes of up to `CHUNK`
/// messages per connection, encoded with rumqttc's MQTT 3.1.1 packets:
/// rumqttc's event loop writes and flushes each publish on its own (one
/// syscall and one timer per message), which was a sixth of a core at
/// 45,000 msg/s, on the two cores the bench measures. Field
/// controllers are not on the machine that runs Kendali; the load generator
/// should take as little of it as it can. QoS 0 needs no acks, so nothing
/// else is read after the CONNACK.
pub async fn telemetry(
    url: BrokerUrl,
    city: String,
    intersections: usize,
    rate: f64,
    connections: usize,
    published: Arc<Published>,
    stop: watch::Receiver<bool>,
) {
    let mut tasks = Vec::new();
    for c in 0..connections.max(1) {
        let (url, city, published, stop) =
            (url.clone(), city.clone(), published.clone(), stop.clone());
        let share = rate / connections.max(1) as f64;
        tasks.push(tokio::spawn(async move {
            let mut stream = match raw_connection(&url, &format!("t{c}")).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "bench publisher could not connect");
                    return;
                }
            };
            let ids: Vec<String> = (0..intersections)
                .filter(|i| i % connections.max(1) == c)
                .map(intersection_id)
                .collect();
            if ids.is_empty() {
                return;
            }
            let topics: Vec<String> = ids
                .iter()
                .map(|i| format!("city/{city}/atcs/{i}/state"))
                .collect();
            let start = Instant::now();
            let mut sent = 0u64;
            let mut buf = bytes::BytesMut::with_capacity(1 << 16);
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while !*stop.borrow() {
                tick.tick().await;
                let due = (start.elapsed().as_secs_f64() * share) as u64;
                let ts = Utc::now()
                    .with_timezone(&crate::domain::wib())
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
                // In writes of at most `CHUNK` messages, each counted once
                // written: a publisher that fell behind neither builds one
                // huge buffer nor counts messages still waiting for a full
                // socket (the step's published rate).
                while sent < due {
                    let upto = due.min(sent + CHUNK);
                    let n = upto - sent;
                    while sent < upto {
                        let k = sent as usize % ids.len();
                        let payload = state_payload(&ids[k], &ts, sent);
                        let p = rumqttc::Publish::new(
                            topics[k].as_str(),
                            rumqttc::QoS::AtMostOnce,
                            payload,
                        );
                        if p.write(&mut buf).is_err() {
                            return;
                        }
                        sent += 1;
                    }
                    if stream.write_all(&buf).await.is_err() {
                        return;
                    }
                    buf.clear();
                    published.telemetry.fetch_add(n, Ordering::Relaxed);
                }
            }
            let mut d = bytes::BytesMut::new();
            if rumqttc::Disconnect.write(&mut d).is_ok() {
                let _ = stream.write_all(&d).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Most telemetry messages in one write (about 140 KB: 256 publishes of a
/// ~520-byte payload and its topic).
const CHUNK: u64 = 256;

/// A plain MQTT 3.1.1 connection for the telemetry publishers, once the
/// broker has accepted it (CONNACK).
async fn raw_connection(url: &BrokerUrl, name: &str) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::AsyncReadExt;
    anyhow::ensure!(
        !url.tls,
        "the bench's telemetry publishers speak plain MQTT (mqtt://)"
    );
    let mut stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port)).await?;
    stream.set_nodelay(true)?;
    let id = format!(
        "bench-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut connect = rumqttc::Connect::new(id);
    connect.keep_alive = 60;
    if let Some(u) = &url.username {
        connect.set_login(u.as_str(), url.password.as_deref().unwrap_or(""));
    }
    let mut buf = bytes::BytesMut::new();
    connect
        .write(&mut buf)
        .map_err(|e| anyhow::anyhow!("CONNECT: {e:?}"))?;
    stream.write_all(&buf).await?;
    buf.clear();
    loop {
        match rumqttc::Packet::read(&mut buf, 1 << 16) {
            Ok(rumqttc::Packet::ConnAck(a)) if a.code == rumqttc::ConnectReturnCode::Success => {
                return Ok(stream)
            }
            Ok(p) => anyhow::bail!("the broker refused the bench publisher: {p:?}"),
            Err(rumqttc::Error::InsufficientBytes(_)) => {
                let n = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut buf))
                    .await??;
                anyhow::ensure!(n > 0, "the broker closed the connection before its CONNACK");
            }
            Err(e) => anyhow::bail!("CONNACK: {e:?}"),
        }
    }
}

/// Publishes `ids.len()` call events at `rate`/s (QoS 1) and counts the broker's acks.
pub async fn calls(
    url: BrokerUrl,
    city: String,
    ids: Arc<Vec<uuid::Uuid>>,
    rate: f64,
    published: Arc<Published>,
) {
    let (client, mut el) = client(&url, "calls");
    let acks = published.clone();
    let poll = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    acks.calls_acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut i = 0usize;
    while i < ids.len() {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as usize).min(ids.len());
        while i < due {
            let (topic, payload) = call_event_payload(&city, i as u64, &ids[i]);
            if client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .is_err()
            {
                return;
            }
            published.calls.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
    }
    // Wait (bounded) for the broker to acknowledge every call event.
    let deadline = Instant::now() + Duration::from_secs(30);
    while published.calls_acked.load(Ordering::Relaxed) < ids.len() as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    poll.abort();
}
