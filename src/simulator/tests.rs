//! End-to-end tests of the simulator over HTTP, as the exporter and the integration tests use it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{AppUsage, FakeGraphApi, Fault, TemplateAnalytics};

const PAGE: &str = "1001";
const CAMPAIGN: &str = "23850001";
const WABA: &str = "102290129340398";
const TOKEN: &str = "EAAGsimulated";
/// 2024-06-15 19:00 UTC, noon in Los Angeles.
const NOW: i64 = 1_718_478_000;

/// One answer, read whole.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    app_usage: Option<String>,
    www_authenticate: Option<String>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|error| panic!("{error}: {}", self.text))
    }

    /// `(code, subcode)` of a Graph error body.
    fn error_codes(&self) -> (i64, Option<i64>) {
        let error = &self.json()["error"];
        (
            error["code"].as_i64().expect("an error code"),
            error["error_subcode"].as_i64(),
        )
    }
}

/// A simulator with one object of each kind, all accepting [`TOKEN`], frozen at [`NOW`].
async fn simulator() -> FakeGraphApi {
    let api = FakeGraphApi::start().await.expect("the simulator starts");
    api.set_now(Some(NOW));
    api.simulate_page(PAGE, TOKEN);
    api.simulate_campaign(CAMPAIGN, TOKEN);
    api.simulate_waba(WABA, TOKEN);
    api
}

async fn get(api: &FakeGraphApi, path_and_query: &str, token: Option<&str>) -> Reply {
    send(api, reqwest::Method::GET, path_and_query, token).await
}

/// The body of a GET with [`TOKEN`] that must answer 200.
async fn answered(api: &FakeGraphApi, path_and_query: &str) -> Value {
    let reply = get(api, path_and_query, Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{path_and_query}: {}", reply.text);
    reply.json()
}

async fn send(
    api: &FakeGraphApi,
    method: reqwest::Method,
    path_and_query: &str,
    token: Option<&str>,
) -> Reply {
    let mut request =
        reqwest::Client::new().request(method, format!("{}{path_and_query}", api.base_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the simulator answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    Reply {
        status: response.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        app_usage: header("x-app-usage"),
        www_authenticate: header("www-authenticate"),
        text: response.text().await.expect("a readable body"),
    }
}

#[tokio::test]
async fn page_insights_are_served_on_the_insights_edge_of_a_page() {
    let api = simulator().await;
    let reply = get(&api, &format!("/v21.0/{PAGE}/insights?metric=page_messages_new_conversations_unique,page_messages_blocked_conversations_unique"), Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let names: Vec<&Value> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|entry| &entry["name"])
        .collect();
    assert_eq!(
        names,
        [
            "page_messages_new_conversations_unique",
            "page_messages_blocked_conversations_unique"
        ]
    );
    let values = body["data"][0]["values"].as_array().expect("values");
    assert_eq!(values.len(), 2);
    assert_eq!(values[1]["end_time"], "2024-06-15T07:00:00+0000");
    assert!(
        values[1]["value"].is_string(),
        "new conversations come as a numeric string"
    );
    let next = body["paging"]["next"].as_str().expect("a next link");
    assert!(
        next.starts_with(&format!("{}/v21.0/{PAGE}/insights?", api.base_url()))
            && !next.contains(TOKEN)
    );
}

#[tokio::test]
async fn campaign_insights_are_served_on_the_insights_edge_of_a_campaign() {
    let api = simulator().await;
    let reply = get(&api, &format!("/v21.0/{CAMPAIGN}/insights?fields=marketing_messages_delivered,marketing_messages_read_rate&date_preset=last_7d"), Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let row = &body["data"][0];
    assert!(row["marketing_messages_delivered"]
        .as_str()
        .is_some_and(|s| s.parse::<u64>().is_ok()));
    assert!(row["marketing_messages_read_rate"]
        .as_str()
        .is_some_and(|s| s.parse::<f64>().is_ok()));
    assert_eq!(
        (row["date_start"].as_str(), row["date_stop"].as_str()),
        (Some("2024-06-08"), Some("2024-06-14"))
    );
    assert_eq!(body["paging"]["cursors"]["before"], "MAZDZD");
}

#[tokio::test]
async fn the_portfolio_limit_field_is_unknown_before_v24_and_the_old_one_answers() {
    let api = simulator().await;
    let new = "whatsapp_business_manager_messaging_limit";
    let reply = get(
        &api,
        &format!("/v23.0/{WABA}/phone_numbers?fields=id,{new}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json()["error"]["code"], 100);
    assert!(reply.text.contains(new), "{}", reply.text);
    let reply = get(
        &api,
        &format!("/v23.0/{WABA}/phone_numbers?fields=id,messaging_limit_tier"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["data"][0]["messaging_limit_tier"], "TIER_10K");
    let reply = get(
        &api,
        &format!("/v24.0/{WABA}/phone_numbers?fields=id,{new}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["data"][1][new], "TIER_2K");
}

#[tokio::test]
async fn each_number_answers_its_own_health_on_the_list_and_on_its_node() {
    let api = simulator().await;
    api.set_phone_health(WABA, Some(super::phone_health_limited()));
    let list = answered(
        &api,
        &format!("/v24.0/{WABA}/phone_numbers?fields=id,health_status"),
    )
    .await;
    let numbers = list["data"].as_array().cloned().expect("data");
    let own = |number: &Value| number["health_status"]["entities"][0].clone();
    assert_eq!(own(&numbers[0])["entity_type"], "PHONE_NUMBER");
    assert_eq!(own(&numbers[0])["id"], numbers[0]["id"]);
    assert_eq!(own(&numbers[0])["can_send_message"], "AVAILABLE");
    assert_eq!(own(&numbers[1])["can_send_message"], "LIMITED");
    assert!(own(&numbers[1])["additional_info"][0].is_string());
    // The overall value is the worst entity's; the account's entities follow the number's.
    assert_eq!(numbers[1]["health_status"]["can_send_message"], "LIMITED");
    assert_eq!(numbers[0]["health_status"]["can_send_message"], "AVAILABLE");
    assert_eq!(
        numbers[0]["health_status"]["entities"][1]["entity_type"],
        "WABA"
    );

    // The node of the second number answers the same, with the account's token only.
    let id = numbers[1]["id"].as_str().expect("an id");
    let node = get(
        &api,
        &format!("/v24.0/{id}?fields=health_status"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(node.status, 200, "{}", node.text);
    assert_eq!(node.json()["id"], id);
    assert_eq!(node.json()["health_status"], numbers[1]["health_status"]);
    let stranger = get(
        &api,
        &format!("/v24.0/{id}?fields=health_status"),
        Some("other"),
    )
    .await;
    assert_eq!(stranger.error_codes().0, 190, "{}", stranger.text);
    let edge = get(&api, &format!("/v24.0/{id}/insights"), Some(TOKEN)).await;
    assert_eq!(edge.error_codes().0, 100, "{}", edge.text);

    // An edge that refuses the field names it; the rest of the list still answers.
    api.refuse_list_health(WABA);
    let refused = get(
        &api,
        &format!("/v24.0/{WABA}/phone_numbers?fields=id,health_status"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(refused.error_codes().0, 100, "{}", refused.text);
    assert!(refused.text.contains("(health_status)"), "{}", refused.text);
    let rest = get(
        &api,
        &format!("/v24.0/{WABA}/phone_numbers?fields=id,quality_rating"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    let node = get(
        &api,
        &format!("/v24.0/{id}?fields=health_status"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(node.status, 200, "{}", node.text);
}

#[tokio::test]
async fn waba_analytics_are_served_on_the_node_itself() {
    let api = simulator().await;
    let fields = "analytics.start(1717225200).end(1718478000).granularity(DAY).phone_numbers([%2216315551000%22])";
    let reply = get(&api, &format!("/v21.0/{WABA}?fields={fields}"), Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["id"], WABA);
    assert_eq!(body["analytics"]["phone_numbers"], json!(["16315551000"]));
    assert_eq!(body["analytics"]["granularity"], "DAY");
    let points = body["analytics"]["data_points"]
        .as_array()
        .expect("data points");
    assert!(
        !points.is_empty() && points.len() < 15,
        "{} of 15 days have traffic",
        points.len()
    );
    // A WABA has no insights edge, and a Page no analytics field.
    let reply = get(
        &api,
        &format!("/v21.0/{WABA}/insights?metric=page_messages_sent"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(reply.error_codes(), (100, None));
    let reply = get(
        &api,
        &format!("/v21.0/{PAGE}?fields=analytics.start(1).end(2).granularity(DAY)"),
        Some(TOKEN),
    )
    .await;
    assert!(reply.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("nonexisting field (analytics) on node type (Page)")));
}

#[tokio::test]
async fn a_malformed_analytics_expression_is_code_100() {
    let api = simulator().await;
    let reply = get(
        &api,
        &format!(
            "/v21.0/{WABA}?fields=analytics.start(1717225200).end(1718478000.granularity(DAY)"
        ),
        Some(TOKEN),
    )
    .await;
    assert_eq!((reply.status, reply.error_codes()), (400, (100, None)));
}

#[tokio::test]
async fn a_token_the_object_does_not_accept_is_code_190() {
    let api = simulator().await;
    let reply = get(
        &api,
        &format!("/v21.0/{PAGE}/insights?metric=page_messages_sent"),
        Some("EAAGsomeone-else"),
    )
    .await;
    assert_eq!((reply.status, reply.error_codes()), (400, (190, Some(467))));
    assert_eq!(reply.json()["error"]["type"], "OAuthException");
    assert!(reply
        .www_authenticate
        .is_some_and(|challenge| challenge.contains("invalid_token")));
    assert!(
        !reply.text.contains("someone-else"),
        "the token is never echoed"
    );
}

#[tokio::test]
async fn a_request_without_a_token_is_code_2500() {
    let api = simulator().await;
    let reply = get(
        &api,
        &format!("/v21.0/{PAGE}/insights?metric=page_messages_sent"),
        None,
    )
    .await;
    assert_eq!((reply.status, reply.error_codes()), (400, (2500, None)));
    assert!(reply.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("An active access token must be used")));
}

#[tokio::test]
async fn an_access_token_query_parameter_is_accepted_and_recorded() {
    let api = simulator().await;
    let reply = get(&api, &format!("/v21.0/{PAGE}/insights?metric=page_messages_sent&access_token={TOKEN}&appsecret_proof=00ff"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let recorded = api.requests();
    assert!(
        recorded[0].query.contains("access_token="),
        "{:?}",
        recorded[0]
    );
    assert_eq!(recorded[0].authorization, None);
}

#[tokio::test]
async fn an_unknown_object_is_code_100_subcode_33() {
    let api = simulator().await;
    let reply = get(
        &api,
        "/v21.0/999/insights?metric=page_messages_sent",
        Some(TOKEN),
    )
    .await;
    assert_eq!((reply.status, reply.error_codes()), (400, (100, Some(33))));
    let body = reply.json();
    assert_eq!(body["error"]["type"], "GraphMethodException");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.starts_with(
        "Unsupported get request. Object with ID '999' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
    )));
    assert_eq!(api.request_count("999"), 1);
}

#[tokio::test]
async fn a_retired_metric_fails_the_whole_request_with_code_100() {
    let api = simulator().await;
    api.retire_metric(PAGE, "page_messages_engagement");
    let path = |metrics: &str| format!("/v21.0/{PAGE}/insights?metric={metrics}");
    let reply = get(
        &api,
        &path("page_messages_sent,page_messages_engagement"),
        Some(TOKEN),
    )
    .await;
    assert_eq!((reply.status, reply.error_codes()), (400, (100, None)));
    assert_eq!(
        reply.json()["error"]["message"],
        "(#100) The value must be a valid insights metric"
    );
    assert_eq!(
        get(&api, &path("page_messages_sent"), Some(TOKEN))
            .await
            .status,
        200
    );
    // A name the catalog does not list fails the same way, unless the Page is told to serve it.
    assert_eq!(
        get(
            &api,
            &path("page_messages_sent,page_messages_mood"),
            Some(TOKEN)
        )
        .await
        .error_codes(),
        (100, None)
    );
    api.simulate_metric(PAGE, "page_messages_mood");
    assert_eq!(
        get(
            &api,
            &path("page_messages_sent,page_messages_mood"),
            Some(TOKEN)
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn a_metric_retired_by_name_is_named_in_the_error_until_it_is_restored() {
    let api = simulator().await;
    api.retire_metric_named(PAGE, "page_messages_engagement");
    let path = format!("/v21.0/{PAGE}/insights?metric=page_messages_sent,page_messages_engagement");
    let reply = get(&api, &path, Some(TOKEN)).await;
    assert_eq!((reply.status, reply.error_codes()), (400, (100, None)));
    assert_eq!(
        reply.json()["error"]["message"],
        "(#100) page_messages_engagement is not a valid insights metric"
    );
    api.restore(PAGE, "page_messages_engagement");
    assert_eq!(get(&api, &path, Some(TOKEN)).await.status, 200);
}

#[tokio::test]
async fn request_level_code_100_faults_fail_any_metric_list() {
    let api = simulator().await;
    api.fail_always(PAGE, Fault::invalid_parameter("since"));
    for metrics in [
        "page_messages_sent",
        "page_messages_sent,page_messages_engagement",
    ] {
        let reply = get(
            &api,
            &format!("/v21.0/{PAGE}/insights?metric={metrics}"),
            Some(TOKEN),
        )
        .await;
        assert_eq!((reply.status, reply.error_codes()), (400, (100, None)));
        assert_eq!(
            reply.json()["error"]["message"],
            "(#100) The parameter since is invalid"
        );
    }
    api.clear_faults(PAGE);
    api.fail_next(PAGE, 1, Fault::invalid_request());
    let reply = get(
        &api,
        &format!("/v21.0/{PAGE}/insights?metric=page_messages_sent"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(reply.json()["error"]["message"], "(#100) Invalid parameter");
}

#[tokio::test]
async fn a_retired_campaign_field_is_named_in_the_error() {
    let api = simulator().await;
    api.retire_field(CAMPAIGN, "marketing_messages_spend");
    let reply = get(&api, &format!("/v21.0/{CAMPAIGN}/insights?fields=marketing_messages_delivered,marketing_messages_spend"), Some(TOKEN)).await;
    assert_eq!(reply.error_codes(), (100, None));
    let message = reply.json()["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        message.starts_with(
            "(#100) marketing_messages_spend is not valid for fields param. please check"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn fail_next_fails_that_many_requests_then_recovers() {
    let api = simulator().await;
    api.fail_next(PAGE, 2, Fault::transient());
    let path = format!("/v21.0/{PAGE}/insights?metric=page_messages_sent");
    for _ in 0..2 {
        let reply = get(&api, &path, Some(TOKEN)).await;
        assert_eq!((reply.status, reply.error_codes()), (500, (2, None)));
        assert_eq!(reply.json()["error"]["is_transient"], true);
    }
    assert_eq!(get(&api, &path, Some(TOKEN)).await.status, 200);
    assert_eq!(api.request_count(PAGE), 3);
}

#[tokio::test]
async fn fail_always_fails_until_the_faults_are_cleared() {
    let api = simulator().await;
    api.fail_always(CAMPAIGN, Fault::throttled(80004));
    let path = format!("/v21.0/{CAMPAIGN}/insights");
    for _ in 0..3 {
        assert_eq!(
            get(&api, &path, Some(TOKEN)).await.error_codes(),
            (80004, None)
        );
    }
    api.clear_faults(CAMPAIGN);
    assert_eq!(get(&api, &path, Some(TOKEN)).await.status, 200);
}

#[tokio::test]
async fn injected_faults_apply_before_authentication() {
    let api = simulator().await;
    api.fail_next(PAGE, 1, Fault::invalid_token());
    api.fail_next(PAGE, 1, Fault::permission_denied());
    let path = format!("/v21.0/{PAGE}/insights?metric=page_messages_sent");
    let expired = get(&api, &path, Some(TOKEN)).await;
    assert_eq!(
        (expired.status, expired.error_codes()),
        (400, (190, Some(463)))
    );
    assert!(!expired.text.contains(TOKEN));
    let denied = get(&api, &path, Some(TOKEN)).await;
    assert_eq!((denied.status, denied.error_codes()), (403, (10, None)));
}

#[tokio::test]
async fn non_json_faults_are_served_as_a_proxy_or_a_cut_connection_would() {
    let api = simulator().await;
    api.fail_next(WABA, 1, Fault::bad_gateway_html());
    api.fail_next(WABA, 1, Fault::InvalidJson);
    let path = format!("/v21.0/{WABA}?fields=id");
    let html = get(&api, &path, Some(TOKEN)).await;
    assert_eq!(html.status, 502);
    assert!(html.content_type.starts_with("text/html") && html.text.contains("502 Bad Gateway"));
    let truncated = get(&api, &path, Some(TOKEN)).await;
    assert_eq!(
        (truncated.status, truncated.content_type.as_str()),
        (200, "application/json")
    );
    assert!(serde_json::from_str::<Value>(&truncated.text).is_err());
}

#[tokio::test]
async fn a_delay_fault_answers_normally_after_waiting() {
    let api = simulator().await;
    api.fail_next(WABA, 1, Fault::Delay(Duration::from_millis(300)));
    let started = Instant::now();
    let reply = get(&api, &format!("/v21.0/{WABA}?fields=id,name"), Some(TOKEN)).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["name"],
        format!("Simulated WhatsApp Business Account {WABA}")
    );
}

#[tokio::test]
async fn a_fixed_response_is_served_verbatim_and_can_be_replaced() {
    let api = simulator().await;
    let first = json!({"data": [{"name": "page_messages_sent", "period": "day", "values": [{"value": {"US": 10, "FR": 3}, "end_time": "1665175977"}]}]});
    api.fixed_response("777", "fixed-token", first.clone());
    let reply = get(
        &api,
        "/v21.0/777/insights?metric=page_messages_sent",
        Some("fixed-token"),
    )
    .await;
    assert_eq!((reply.status, reply.json()), (200, first));
    let second = json!({"data": []});
    api.fixed_response("777", "fixed-token", second.clone());
    assert_eq!(
        get(&api, "/v21.0/777?fields=anything", Some("fixed-token"))
            .await
            .json(),
        second
    );
    assert_eq!(
        get(&api, "/v21.0/777", Some(TOKEN)).await.error_codes(),
        (190, Some(467))
    );
}

#[tokio::test]
async fn a_rotated_token_makes_the_old_one_fail() {
    let api = simulator().await;
    api.set_token(PAGE, "EAAGrotated");
    let path = format!("/v21.0/{PAGE}/insights?metric=page_messages_sent");
    assert_eq!(
        get(&api, &path, Some(TOKEN)).await.error_codes(),
        (190, Some(467))
    );
    assert_eq!(get(&api, &path, Some("EAAGrotated")).await.status, 200);
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_their_authorization() {
    let api = simulator().await;
    get(
        &api,
        &format!("/v21.0/{PAGE}/insights?metric=page_messages_sent"),
        Some(TOKEN),
    )
    .await;
    get(&api, &format!("/v21.0/{WABA}?fields=id"), None).await;
    get(&api, "/health", None).await;
    let recorded = api.requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].method, "GET");
    assert_eq!(recorded[0].path, format!("/v21.0/{PAGE}/insights"));
    assert_eq!(recorded[0].query, "metric=page_messages_sent");
    assert_eq!(
        recorded[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(recorded[0].object_id.as_deref(), Some(PAGE));
    assert_eq!(
        (
            recorded[1].object_id.as_deref(),
            recorded[1].authorization.as_deref()
        ),
        (Some(WABA), None)
    );
    assert_eq!(recorded[2].object_id, None);
    assert_eq!((api.request_count(PAGE), api.request_count(WABA)), (1, 1));
}

#[tokio::test]
async fn every_answer_carries_json_and_the_app_usage_header() {
    let api = simulator().await;
    let usage = |reply: &Reply| -> Value {
        serde_json::from_str(reply.app_usage.as_deref().expect("an X-App-Usage header"))
            .expect("JSON usage")
    };
    let ok = get(&api, &format!("/v21.0/{PAGE}?fields=name"), Some(TOKEN)).await;
    let error = get(&api, "/v21.0/999", Some(TOKEN)).await;
    for reply in [&ok, &error] {
        assert_eq!(reply.content_type, "application/json");
        let usage = usage(reply);
        assert!(
            ["call_count", "total_cputime", "total_time"]
                .iter()
                .all(|key| usage[key].is_u64()),
            "{usage}"
        );
    }
    assert!(usage(&error)["call_count"].as_u64() >= usage(&ok)["call_count"].as_u64());
    api.set_app_usage(Some(AppUsage {
        call_count: 95,
        total_cputime: 40,
        total_time: 60,
    }));
    let busy = get(&api, &format!("/v21.0/{PAGE}?fields=name"), Some(TOKEN)).await;
    assert_eq!(
        usage(&busy),
        json!({"call_count": 95, "total_cputime": 40, "total_time": 60})
    );
}

#[tokio::test]
async fn paths_and_methods_graph_does_not_serve_are_graph_errors() {
    let api = simulator().await;
    let unversioned = get(
        &api,
        &format!("/{PAGE}/insights?metric=page_messages_sent"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (unversioned.status, unversioned.error_codes()),
        (400, (2500, None))
    );
    let post = send(
        &api,
        reqwest::Method::POST,
        &format!("/v21.0/{PAGE}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(post.error_codes(), (100, Some(33)));
    assert!(post.text.contains("Unsupported post request"));
    let edge = get(&api, &format!("/v21.0/{PAGE}/conversations"), Some(TOKEN)).await;
    assert_eq!(edge.error_codes(), (100, None));
}

#[tokio::test]
async fn error_bodies_carry_a_fresh_trace_id() {
    let api = simulator().await;
    let trace = |reply: Reply| {
        reply.json()["error"]["fbtrace_id"]
            .as_str()
            .map(str::to_owned)
            .expect("a trace id")
    };
    let first = trace(get(&api, "/v21.0/999", Some(TOKEN)).await);
    let second = trace(get(&api, "/v21.0/999", Some(TOKEN)).await);
    assert_eq!(first.len(), 23);
    assert_ne!(first, second);
}

#[tokio::test]
async fn the_same_request_at_the_same_time_gets_the_same_numbers() {
    let api = simulator().await;
    let path = format!("/v21.0/{PAGE}/insights?metric=page_messages_sent,page_messages_read_ratio&breakdown=messaging_channel");
    let first = get(&api, &path, Some(TOKEN)).await.json();
    assert_eq!(get(&api, &path, Some(TOKEN)).await.json(), first);
    api.set_now(Some(NOW + 600));
    assert_ne!(get(&api, &path, Some(TOKEN)).await.json(), first);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let api = simulator().await;
    let url = format!("{}/v21.0/{PAGE}", api.base_url());
    api.shutdown();
    let client = reqwest::Client::new();
    let mut refused = false;
    for _ in 0..50 {
        if client.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the server still answers after shutdown");
}

#[test]
fn the_request_log_keeps_the_latest_requests_and_counts_every_one() {
    let shared = super::Shared {
        base_url: "http://127.0.0.1:1".to_owned(),
        registry: std::sync::Mutex::new(super::Registry::default()),
    };
    let total = super::REQUEST_LOG_CAPACITY + 5;
    for index in 0..total {
        let _ = shared.admit(super::RecordedRequest {
            method: "GET".to_owned(),
            path: format!("/v23.0/PAGE/insights?n={index}"),
            query: String::new(),
            authorization: None,
            object_id: Some("PAGE".to_owned()),
            in_batch: false,
            appsecret_proof: None,
        });
    }
    let registry = shared.registry();
    assert_eq!(registry.requests.len(), super::REQUEST_LOG_CAPACITY);
    assert_eq!(registry.request_counts.get("PAGE"), Some(&total));
    assert!(registry
        .requests
        .front()
        .is_some_and(|r| r.path.ends_with("n=5")));
}

/// The WhatsApp node read the exporter sends: every field in one request (quotes encoded).
const WABA_FIELDS: &str = "analytics.start(1717225200).end(1718478000).granularity(DAY),\
pricing_analytics.start(1717225200).end(1718478000).granularity(DAILY)\
.dimensions([%22PRICING_CATEGORY%22,%22PRICING_TYPE%22,%22COUNTRY%22,%22PHONE%22]),\
conversation_analytics.start(1717225200).end(1718478000).granularity(DAILY)\
.metric_types([%22CONVERSATION%22,%22COST%22])\
.dimensions([%22CONVERSATION_CATEGORY%22,%22CONVERSATION_TYPE%22,%22CONVERSATION_DIRECTION%22,%22COUNTRY%22,%22PHONE%22]),\
name,currency";

#[tokio::test]
async fn one_waba_read_answers_every_whatsapp_field_and_counts_once() {
    let api = simulator().await;
    let reply = get(
        &api,
        &format!("/v21.0/{WABA}?fields={WABA_FIELDS}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(api.request_count(WABA), 1);
    let body = reply.json();
    assert_eq!(body["currency"], "USD");
    assert_eq!(
        body["name"],
        format!("Simulated WhatsApp Business Account {WABA}")
    );
    assert!(body["analytics"]["data_points"].is_array());
    let pricing = body["pricing_analytics"]["data"][0]["data_points"]
        .as_array()
        .expect("pricing points");
    assert!(pricing
        .iter()
        .all(|p| p["volume"].is_i64() && p["country"].is_string() && p.get("tier").is_none()));
    let conversations = body["conversation_analytics"]["data"][0]["data_points"]
        .as_array()
        .expect("conversation points");
    assert!(!conversations.is_empty());
    assert!(conversations
        .iter()
        .all(|p| p["conversation"].is_i64() && p["cost"].is_f64()));

    // A partner-billed account: pricing without cost, and COST of conversations fails the read.
    api.set_partner_billed(WABA, true);
    let reply = get(
        &api,
        &format!("/v21.0/{WABA}?fields={WABA_FIELDS}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!((reply.status, reply.error_codes()), (400, (100, None)));
    assert!(reply.text.contains("billed through a solution partner"));
    let pricing_only = "pricing_analytics.start(1717225200).end(1718478000).granularity(DAILY)";
    let reply = get(
        &api,
        &format!("/v21.0/{WABA}?fields={pricing_only}"),
        Some(TOKEN),
    )
    .await;
    let points = reply.json()["pricing_analytics"]["data"][0]["data_points"].clone();
    assert!(points
        .as_array()
        .is_some_and(|p| !p.is_empty() && p.iter().all(|p| p.get("cost").is_none())));
}

#[tokio::test]
async fn template_edges_page_and_follow_the_account_settings() {
    let api = simulator().await;
    api.set_template_count(WABA, 30);
    let path = format!("/v21.0/{WABA}/message_templates?fields=id,name,language,category,status");
    let first = get(&api, &path, Some(TOKEN)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first = first.json();
    assert_eq!(first["data"].as_array().map(Vec::len), Some(25));
    let next = first["paging"]["next"].as_str().expect("a next link");
    assert!(
        next.starts_with(&format!(
            "{}/v21.0/{WABA}/message_templates?",
            api.base_url()
        )) && next.contains(&format!("access_token={TOKEN}")),
        "{next}"
    );
    let after = first["paging"]["cursors"]["after"]
        .as_str()
        .expect("a cursor");
    let second = get(&api, &format!("{path}&after={after}"), Some(TOKEN)).await;
    let second = second.json();
    assert_eq!(second["data"].as_array().map(Vec::len), Some(6));
    assert!(second["paging"].get("next").is_none());
    assert_eq!(api.request_count(WABA), 2, "edge requests are counted");

    let ids: Vec<&str> = first["data"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
        .map(|t| t["id"].as_str().expect("an id"))
        .collect();
    let analytics = format!(
        "/v21.0/{WABA}/template_analytics?start=1718150400&end=1718478000&granularity=DAILY\
         &metric_types=SENT,DELIVERED,READ,CLICKED,COST&template_ids=[{}]",
        ids.join(",")
    );
    let reply = get(&api, &analytics, Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let points = reply.json()["data"][0]["data_points"].clone();
    assert_eq!(points.as_array().map(Vec::len), Some(3 * 4));
    api.set_template_analytics(WABA, TemplateAnalytics::NotEnabled);
    let reply = get(&api, &analytics, Some(TOKEN)).await;
    assert_eq!((reply.status, reply.error_codes()), (400, (100, None)));
    assert!(reply.text.contains("is_enabled_for_insights=true"));
    api.set_template_analytics(WABA, TemplateAnalytics::RegionUnavailable);
    let reply = get(&api, &analytics, Some(TOKEN)).await;
    assert!(reply.text.contains("EU, UK or Japan"), "{}", reply.text);

    // Confirming template analytics is refused, and the attempt is on record.
    let post = send(
        &api,
        reqwest::Method::POST,
        &format!("/v21.0/{WABA}?is_enabled_for_insights=true"),
        Some(TOKEN),
    )
    .await;
    assert_eq!((post.status, post.error_codes()), (400, (100, None)));
    assert!(api
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.query.contains("is_enabled_for_insights")));
}

#[tokio::test]
async fn fixed_fields_and_edges_answer_verbatim_beside_simulated_ones() {
    let api = simulator().await;
    let example = json!({ "data": [{ "data_points": [{
        "start": 1748761200, "end": 1748847600, "country": "US", "pricing_type": "REGULAR",
        "pricing_category": "MARKETING", "tier": "0:MAX", "volume": 4, "cost": 40
    }]}]});
    api.fixed_field(WABA, "pricing_analytics", example.clone());
    let fields = "pricing_analytics.start(1).end(2).granularity(DAILY),currency";
    let reply = get(&api, &format!("/v21.0/{WABA}?fields={fields}"), Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["pricing_analytics"], example);
    assert_eq!(reply.json()["currency"], "USD");
    let edge = json!({ "data": [{ "granularity": "DAILY", "data_points": [] }] });
    api.fixed_edge(WABA, "template_analytics", edge.clone());
    let reply = get(
        &api,
        &format!("/v21.0/{WABA}/template_analytics"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(reply.json(), edge);

    api.set_phone_quality(WABA, Some("YELLOW"));
    let numbers = format!("/v21.0/{WABA}/phone_numbers?fields=quality_rating&limit=5");
    let reply = get(&api, &numbers, Some(TOKEN)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["data"][0]["quality_rating"], "GREEN");
    assert_eq!(body["data"][1]["quality_rating"], "YELLOW");
    assert!(body["data"][1]["id"].is_string());
}
