//! A DNS server on loopback for the resolver tests, built on `hickory-proto`: answers A and
//! AAAA queries with every address a name has (several per name, in order), NXDOMAIN for
//! unknown names, and records what the clients asked (count, EDNS0 payload size).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

/// The running server; its thread ends with the test process.
#[derive(Debug)]
pub struct MultiDnsResponder {
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
    pub queries: Arc<AtomicUsize>,
    /// The distinct EDNS0 payload sizes the queries advertised, `None` for a query without
    /// an OPT record.
    pub payloads: Arc<Mutex<BTreeSet<Option<u16>>>>,
}

impl MultiDnsResponder {
    pub fn start() -> MultiDnsResponder {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("binding the DNS responder");
        let addr = sock.local_addr().expect("address");
        let records: Arc<Mutex<HashMap<String, Vec<IpAddr>>>> = Arc::default();
        let queries = Arc::new(AtomicUsize::new(0));
        let payloads: Arc<Mutex<BTreeSet<Option<u16>>>> = Arc::default();
        let (r, q, p) = (records.clone(), queries.clone(), payloads.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                p.lock()
                    .expect("payloads")
                    .insert(query.edns.as_ref().map(|e| e.max_payload()));
                let reply = answer(&query, &r.lock().expect("records"));
                if let Ok(bytes) = reply.to_vec() {
                    let _ = sock.send_to(&bytes, from);
                }
            }
        });
        MultiDnsResponder {
            addr,
            records,
            queries,
            payloads,
        }
    }

    /// Sets the addresses of `name` (an empty list: NXDOMAIN).
    pub fn set(&self, name: &str, ips: &[IpAddr]) {
        let mut r = self.records.lock().expect("records");
        if ips.is_empty() {
            r.remove(&name.to_ascii_lowercase());
        } else {
            r.insert(name.to_ascii_lowercase(), ips.to_vec());
        }
    }
}

fn answer(query: &Message, records: &HashMap<String, Vec<IpAddr>>) -> Message {
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries.iter().cloned());
    if query.edns.is_some() {
        reply.set_edns(Edns::new());
    }
    let Some(q) = query.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    let key = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let Some(ips) = records.get(&key) else {
        reply.metadata.response_code = ResponseCode::NXDomain;
        return reply;
    };
    for ip in ips {
        let data = match (ip, q.query_type()) {
            (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
            (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
            _ => continue,
        };
        reply.add_answer(Record::from_rdata(q.name().clone(), 1, data));
    }
    reply
}
