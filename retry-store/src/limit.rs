//! `retry-store limit`: the operators' limits of running attempts (`max_running`), set,
//! cleared and listed.

use retry_runtime::durable::{format_time, FunctionLimit, Store};
use serde_json::json;

use crate::table::{render, Align};

/// `N` (`Some`) or `none` (`None`), as `limit FUNCTION N|none` takes it.
#[derive(Debug, Clone, Copy)]
pub struct Value(pub Option<u32>);

/// Parses `N` or `none`.
pub fn parse(text: &str) -> Result<Value, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(Value(None));
    }
    match text.parse::<u32>().map(|n| Value(Some(n))) {
        Ok(Value(Some(0))) => Err("0 would stop the function's calls: pause it instead \
                      (`retry-store pause FUNCTION`), or give 1 or more"
            .into()),
        Ok(v) => Ok(v),
        Err(_) => Err(format!(
            "`{text}` is not a limit: give a whole number of running attempts (1 or more), \
             or `none` to clear the operator's limit"
        )),
    }
}

/// `limit FUNCTION N|none`: sets or clears the operator's limit, and says what applies now.
pub async fn set(
    store: &Store,
    function: &str,
    max_running: Option<u32>,
    json: bool,
) -> Result<String, String> {
    let changed = store
        .set_limit(function, max_running)
        .await
        .map_err(|e| e.to_string())?;
    let now = store
        .limits()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|l| l.function == function);
    let effective = now.as_ref().and_then(FunctionLimit::effective);
    if json {
        return Ok(crate::to_json(&json!({
            "command": "limit",
            "count": u64::from(changed),
            "cid": null,
            "function": function,
            "max_running": effective,
        })));
    }
    let applies = match (max_running, now.as_ref().and_then(|l| l.declared)) {
        (Some(n), _) => format!("at most {n} running at once across every worker"),
        (None, Some(d)) => format!("its own `max_running = {d}` applies again"),
        (None, None) => "no limit".into(),
    };
    Ok(match (max_running, changed) {
        (Some(_), _) => format!("limited {function}: {applies}\n"),
        (None, true) => format!("cleared the operator's limit of {function}: {applies}\n"),
        (None, false) => format!("{function} had no operator's limit: {applies}\n"),
    })
}

/// `limit` alone: every function with a limit, from its attribute, an operator, or both.
pub async fn list(store: &Store, json: bool) -> Result<String, String> {
    let limits = store.limits().await.map_err(|e| e.to_string())?;
    let show = |n: Option<u32>| n.map_or("-".to_owned(), |n| n.to_string());
    Ok(if json {
        let rows: Vec<_> = limits
            .iter()
            .map(|l| {
                json!({
                    "function": l.function,
                    "declared": l.declared,
                    "operator": l.operator,
                    "max_running": l.effective(),
                    "set_at": format_time(l.set_at),
                })
            })
            .collect();
        crate::to_json(&rows)
    } else {
        let rows: Vec<Vec<String>> = limits
            .iter()
            .map(|l| {
                vec![
                    l.function.clone(),
                    show(l.effective()),
                    show(l.declared),
                    show(l.operator),
                    format_time(l.set_at),
                ]
            })
            .collect();
        render(
            &[
                ("FUNCTION", Align::Left),
                ("MAX_RUNNING", Align::Right),
                ("ATTRIBUTE", Align::Right),
                ("OPERATOR", Align::Right),
                ("CHANGED", Align::Left),
            ],
            &rows,
        )
    })
}
