use serde_json::json;

use super::memory_store;
use crate::store::cdr::write_csv_field;
use crate::store::{
    CdrFilter, CdrRecord, Disposition, ExportFormat, PageRequest, StoreError, StoreResult,
};

fn cdr(id: &str, start_ms: i64, trunk_out: Option<&str>, disposition: Disposition) -> CdrRecord {
    CdrRecord {
        id: id.into(),
        a_call_id: format!("a-{id}"),
        b_call_id: Some(format!("b-{id}")),
        start_ms,
        answer_ms: (disposition == Disposition::Answered).then_some(start_ms + 1_000),
        end_ms: start_ms + 5_000,
        caller: "sip:+4930123@example.com".into(),
        callee: "sip:+4940999@carrier.example".into(),
        source_addr: "192.0.2.1:5060".into(),
        source_transport: "udp".into(),
        dest_addr: Some("198.51.100.2:5060".into()),
        dest_transport: Some("tls".into()),
        trunk_in: None,
        trunk_out: trunk_out.map(str::to_owned),
        disposition,
        sip_status: if disposition == Disposition::Answered {
            200
        } else {
            486
        },
        end_reason: "bye_from_a".into(),
        duration_ms: 4_000,
        media_stats: json!({"a": {"packets": 10, "lost": 0}}),
        security: json!({"a": {"tls": false, "srtp": false}, "identity": "none"}),
    }
}

/// A CDR for other tests' use.
pub(super) fn sample(id: &str, start_ms: i64, caller_tag: &str) -> CdrRecord {
    let mut record = cdr(id, start_ms, None, Disposition::Answered);
    record.caller = format!("caller-{caller_tag};");
    record
}

#[test]
fn batches_insert_once_and_query_with_filters() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let batch = vec![
        cdr("1", 1_000, Some("carrier"), Disposition::Answered),
        cdr("2", 2_000, Some("carrier"), Disposition::Busy),
        cdr("3", 3_000, Some("other"), Disposition::Answered),
    ];
    assert_eq!(store.insert_cdrs(&batch)?, 3);
    // A retried batch inserts nothing new.
    assert_eq!(store.insert_cdrs(&batch)?, 0);
    assert_eq!(store.count_cdrs()?, 3);

    let all = store.query_cdrs(&CdrFilter::default(), &PageRequest::first(10))?;
    let ids: Vec<&str> = all.items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["3", "2", "1"]);
    assert_eq!(all.items[2], batch[0]);

    let filter = CdrFilter {
        trunk: Some("carrier".into()),
        disposition: Some(Disposition::Answered),
        ..CdrFilter::default()
    };
    let answered = store.query_cdrs(&filter, &PageRequest::first(10))?;
    assert_eq!(answered.items.len(), 1);
    assert_eq!(answered.items[0].id, "1");

    let window = CdrFilter {
        since: Some(2_000),
        until: Some(3_000),
        callee: Some("+4940".into()),
        ..CdrFilter::default()
    };
    let in_window = store.query_cdrs(&window, &PageRequest::first(10))?;
    assert_eq!(in_window.items.len(), 1);
    assert_eq!(in_window.items[0].id, "2");
    let nobody = CdrFilter {
        caller: Some("nobody".into()),
        ..CdrFilter::default()
    };
    assert!(
        store
            .query_cdrs(&nobody, &PageRequest::first(10))?
            .items
            .is_empty()
    );
    Ok(())
}

#[test]
fn cdr_pages_follow_the_cursor_across_equal_start_times() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let batch: Vec<CdrRecord> = (0..7)
        .map(|n| {
            cdr(
                &format!("id{n}"),
                1_000 * (n / 3),
                None,
                Disposition::Failed,
            )
        })
        .collect();
    store.insert_cdrs(&batch)?;
    let mut seen = Vec::new();
    let mut page = store.query_cdrs(&CdrFilter::default(), &PageRequest::first(3))?;
    loop {
        seen.extend(page.items.iter().map(|c| c.id.clone()));
        let Some(cursor) = page.next_cursor.clone() else {
            break;
        };
        page = store.query_cdrs(&CdrFilter::default(), &PageRequest::after(cursor, 3))?;
    }
    assert_eq!(seen, ["id6", "id5", "id4", "id3", "id2", "id1", "id0"]);
    let bad = store.query_cdrs(&CdrFilter::default(), &PageRequest::after("00", 3));
    assert!(matches!(
        bad,
        Err(StoreError::Invalid {
            field: "cursor",
            ..
        })
    ));
    Ok(())
}

#[test]
fn csv_fields_are_quoted_per_rfc_4180() -> std::io::Result<()> {
    let mut out = Vec::new();
    for field in ["plain", "a,b", "say \"hi\"", "two\r\nlines", " padded", ""] {
        write_csv_field(&mut out, field)?;
        out.push(b'|');
    }
    assert_eq!(
        String::from_utf8_lossy(&out),
        "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\r\nlines\"|\" padded\"||"
    );
    Ok(())
}

#[test]
fn export_writes_csv_with_header_and_json_lines() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let mut tricky = cdr("2", 2_000, Some("carrier"), Disposition::Answered);
    tricky.caller = "\"Doe, John\" <sip:john@example.com>".into();
    store.insert_cdrs(&[tricky, cdr("1", 1_000, None, Disposition::NoAnswer)])?;

    let mut csv = Vec::new();
    assert_eq!(
        store.export_cdrs(&CdrFilter::default(), ExportFormat::Csv, &mut csv)?,
        2
    );
    let csv = String::from_utf8_lossy(&csv).into_owned();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("id,a_call_id,b_call_id,start_ms,answer_ms,end_ms,caller,"));
    assert!(lines[1].starts_with("1,a-1,b-1,1000,,6000,"));
    assert!(lines[1].contains(",no_answer,486,bye_from_a,4000,"));
    assert!(lines[2].contains(",\"\"\"Doe, John\"\" <sip:john@example.com>\","));
    assert!(lines[2].contains(",\"{\"\"a\"\":{\"\"lost\"\":0,\"\"packets\"\":10}}\","));
    assert_eq!(lines[3], "");

    let mut jsonl = Vec::new();
    let filter = CdrFilter {
        disposition: Some(Disposition::Answered),
        ..CdrFilter::default()
    };
    assert_eq!(
        store.export_cdrs(&filter, ExportFormat::JsonLines, &mut jsonl)?,
        1
    );
    let text = String::from_utf8_lossy(&jsonl);
    let parsed: CdrRecord = serde_json::from_str(text.trim_end())?;
    assert_eq!(parsed.caller, "\"Doe, John\" <sip:john@example.com>");
    assert_eq!(parsed.disposition, Disposition::Answered);
    Ok(())
}

#[test]
fn prune_removes_only_old_records() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let batch: Vec<CdrRecord> = (0..25)
        .map(|n| cdr(&n.to_string(), n * 100, None, Disposition::Cancelled))
        .collect();
    store.insert_cdrs(&batch)?;
    assert_eq!(store.prune_cdrs(1_000)?, 10);
    assert_eq!(store.count_cdrs()?, 15);
    assert_eq!(store.prune_cdrs(1_000)?, 0);
    Ok(())
}

#[test]
fn invalid_cdrs_reject_the_whole_batch() -> StoreResult<()> {
    let (mut store, _) = memory_store()?;
    let mut bad = cdr("", 1, None, Disposition::Failed);
    bad.id.clear();
    let result = store.insert_cdrs(&[cdr("ok", 1, None, Disposition::Failed), bad]);
    assert!(matches!(
        result,
        Err(StoreError::Invalid { field: "id", .. })
    ));
    assert_eq!(store.count_cdrs()?, 0);
    Ok(())
}
