//! `template.yaml` read against the code it deploys: what moto cannot check (timeouts, retries,
//! an Express execution's 5 minutes, IAM) is checked here as relations, so changing a constant
//! or the template without the other fails.
//!
//! - Budgets: each function's timeout fits the time its code budgets for, and the state
//!   machine's worst case (every retry, every attempt to its timeout) fits an Express execution.
//! - Errors: the Retry and Catch lists name exactly the error types the handlers return.
//! - Data flow: the collector's output, passed on as the definition says, is an input the
//!   transformer takes; so is the failure path's `{}`.
//! - IAM: what a fresh, empty bucket needs (a missing key must read as 404) is granted, and no
//!   more than the code's key prefixes.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cryptomon_core::alerting::ALERTS_PREFIX;
use cryptomon_core::engine::history::HISTORY_COLUMNS;
use cryptomon_core::keys::{BACKFILL_PREFIX, HISTORY_PREFIX, RAW_PREFIX, SUMMARY_KEY, WINDOW_KEY};
use cryptomon_core::pipeline::SOURCE_TIMEOUT;
use cryptomon_core::{DynSource, SourceName};
use cryptomon_lambda::collector::DEADLINE_MARGIN;
use cryptomon_lambda::startup_backfill::REBUILD_MARGIN;
use cryptomon_lambda::transformer::FINISH_MARGIN;
use cryptomon_lambda::{Collector, NON_RETRYABLE, RETRYABLE, Transformer, TransformerOutput};
use cryptomon_mock::{FaultySource, MemoryStore, SourceFault, SyntheticSource};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use yaml_rust2::{Yaml, YamlLoader};

/// An Express execution's hard limit.
const EXPRESS_LIMIT: Duration = Duration::from_secs(300);
/// What the worst case must leave of it: state transitions and invocation overheads.
const EXPRESS_SLACK: Duration = Duration::from_secs(10);
/// The HTTP API's integration timeout.
const HTTP_API_TIMEOUT: Duration = Duration::from_secs(30);
/// The errors Step Functions' Lambda integration raises for a failed invoke (not the function's
/// own): the only other names a Retry may list.
const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

fn template() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn function<'a>(template: &'a Yaml, name: &str) -> &'a Yaml {
    let f = &template["Resources"][name];
    assert_eq!(
        f["Type"].as_str(),
        Some("AWS::Serverless::Function"),
        "{name}"
    );
    &f["Properties"]
}

fn seconds(value: &Yaml, what: &str) -> Duration {
    let secs = value
        .as_i64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value:?}"));
    Duration::from_secs(secs.try_into().unwrap())
}

fn timeout(template: &Yaml, name: &str) -> Duration {
    seconds(
        &function(template, name)["Timeout"],
        &format!("{name}'s Timeout"),
    )
}

fn definition(template: &Yaml) -> &Yaml {
    let machine = &template["Resources"]["PipelineStateMachine"]["Properties"];
    assert_eq!(machine["Type"].as_str(), Some("EXPRESS"));
    &machine["Definition"]
}

fn strings(list: &Yaml) -> Vec<&str> {
    list.as_vec()
        .unwrap_or_else(|| panic!("expected a list, got {list:?}"))
        .iter()
        .map(|y| y.as_str().unwrap())
        .collect()
}

#[test]
fn function_timeouts_fit_what_the_code_budgets() {
    let t = template();
    // Every source gets its whole budget, and the collector still reports before Lambda stops it.
    let collector = timeout(&t, "CollectorFunction");
    assert!(
        collector > SOURCE_TIMEOUT + DEADLINE_MARGIN,
        "the collector's Timeout {collector:?} must exceed SOURCE_TIMEOUT {SOURCE_TIMEOUT:?} + \
         DEADLINE_MARGIN {DEADLINE_MARGIN:?}"
    );
    // The transformer reads for at least as long as it keeps for finishing.
    let transformer = timeout(&t, "TransformerFunction");
    assert!(
        transformer >= FINISH_MARGIN * 2,
        "the transformer's Timeout {transformer:?} leaves too little before FINISH_MARGIN \
         {FINISH_MARGIN:?}"
    );
    // A fresh deployment's first invocation has time to backfill before the rebuild.
    let backfill = transformer.saturating_sub(FINISH_MARGIN + REBUILD_MARGIN);
    assert!(
        backfill >= std::time::Duration::from_secs(20),
        "the transformer's Timeout {transformer:?} leaves {backfill:?} for a startup backfill"
    );
    // API Gateway gives up on an integration after 30 s: a longer timeout is never used.
    let api = timeout(&t, "ApiFunction");
    assert!(api <= HTTP_API_TIMEOUT, "the api's Timeout {api:?}");
    // No default hides a function without its own.
    assert!(t["Globals"]["Function"]["Timeout"].is_badvalue());
}

/// The longest an execution can take from `state` to its end: every retrier used to its last
/// attempt, each attempt running to the function's timeout.
fn worst_case(t: &Yaml, states: &Yaml, state: &str) -> Duration {
    let s = &states[state];
    match s["Type"].as_str().unwrap() {
        "Fail" | "Succeed" => Duration::ZERO,
        "Task" => {
            let function = s["Parameters"]["FunctionName"].as_str().unwrap();
            let substitutions =
                &t["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"];
            let arn_of = function.trim_start_matches("${").trim_end_matches('}');
            // `!GetAtt CollectorFunction.Arn` is read as the text "CollectorFunction.Arn".
            let resource = substitutions[arn_of]
                .as_str()
                .unwrap()
                .trim_end_matches(".Arn");
            let per_attempt = timeout(t, resource);
            let mut attempts = 1;
            let mut waits = Duration::ZERO;
            for retrier in s["Retry"].as_vec().map(Vec::as_slice).unwrap_or_default() {
                // The defaults Step Functions applies when a field is absent.
                let max = retrier["MaxAttempts"].as_i64().unwrap_or(3);
                let interval = retrier["IntervalSeconds"].as_i64().unwrap_or(1) as f64;
                let backoff = retrier["BackoffRate"]
                    .as_f64()
                    .or(retrier["BackoffRate"].as_i64().map(|b| b as f64))
                    .unwrap_or(2.0);
                for k in 0..max {
                    let mut wait = interval * backoff.powi(k as i32);
                    if let Some(cap) = retrier["MaxDelaySeconds"].as_i64() {
                        wait = wait.min(cap as f64);
                    }
                    waits += Duration::from_secs_f64(wait);
                }
                attempts += max;
            }
            let here = per_attempt * u32::try_from(attempts).unwrap() + waits;
            let mut next: Vec<&str> = s["Next"].as_str().into_iter().collect();
            for catcher in s["Catch"].as_vec().map(Vec::as_slice).unwrap_or_default() {
                next.push(catcher["Next"].as_str().unwrap());
            }
            here + next
                .into_iter()
                .map(|n| worst_case(t, states, n))
                .max()
                .unwrap_or_default()
        }
        other => panic!("state {state}: add {other} to the worst case"),
    }
}

#[test]
fn worst_case_retries_fit_an_express_execution() {
    let t = template();
    let definition = definition(&t);
    let start = definition["StartAt"].as_str().unwrap();
    let worst = worst_case(&t, &definition["States"], start);
    assert!(
        worst + EXPRESS_SLACK <= EXPRESS_LIMIT,
        "an execution may take {worst:?}, past an Express execution's {EXPRESS_LIMIT:?} less \
         {EXPRESS_SLACK:?}"
    );
}

#[test]
fn retry_and_catch_name_the_errors_the_functions_return() {
    let t = template();
    let states = &definition(&t)["States"];
    let mut tasks = 0;
    for (name, state) in states.as_hash().unwrap() {
        let name = name.as_str().unwrap();
        if state["Type"].as_str() != Some("Task") {
            continue;
        }
        tasks += 1;
        let mut retried = BTreeSet::new();
        for retrier in state["Retry"].as_vec().unwrap() {
            for error in strings(&retrier["ErrorEquals"]) {
                assert!(
                    error == RETRYABLE || LAMBDA_SERVICE_ERRORS.contains(&error),
                    "{name} retries {error:?}, which no handler returns (its errors are \
                     {RETRYABLE:?} and {NON_RETRYABLE:?})"
                );
                retried.insert(error);
            }
        }
        assert!(!retried.contains(NON_RETRYABLE), "{name}");
        for error in LAMBDA_SERVICE_ERRORS {
            assert!(retried.contains(error), "{name} does not retry {error}");
        }
        // Whatever else happens (NonRetryable, a timeout, a crash) is caught and ends in a
        // failed execution with the cause, which the failed-executions alarm watches.
        let catchers = state["Catch"].as_vec().unwrap();
        assert!(
            catchers
                .iter()
                .any(|c| strings(&c["ErrorEquals"]) == ["States.ALL"]),
            "{name} must catch States.ALL"
        );
    }
    assert_eq!(tasks, 3);
    // The collector's retryable failure (every source down, some may recover) is retried once.
    let collect = &states["Collect"]["Retry"];
    assert!(
        collect
            .as_vec()
            .unwrap()
            .iter()
            .any(|r| strings(&r["ErrorEquals"]) == [RETRYABLE])
    );
}

fn invoke(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// What a Task passes on, for the two paths this definition uses: `$` is the whole input and
/// `$.Payload` the function's answer inside the Lambda integration's result.
fn select(path: &str, value: &Value) -> Value {
    match path {
        "$" => value.clone(),
        "$.Payload" => value["Payload"].clone(),
        other => panic!("the test knows no path {other}: teach it"),
    }
}

/// The payload `state` sends its function, given the state's input.
fn payload_of(state: &Yaml, input: &Value) -> Value {
    let parameters = &state["Parameters"];
    if let Some(path) = parameters["Payload.$"].as_str() {
        return select(path, input);
    }
    match &parameters["Payload"] {
        Yaml::Hash(h) if h.is_empty() => json!({}),
        other => panic!("the test knows no payload {other:?}: teach it"),
    }
}

#[tokio::test]
async fn the_collectors_output_is_the_transformers_input() {
    let t = template();
    let states = &definition(&t)["States"];
    let store = Arc::new(MemoryStore::new());
    let source = |name: &str| -> DynSource {
        Arc::new(SyntheticSource::new(SourceName::new(name).unwrap(), 3, 7))
    };
    let collector = Collector::new(store.clone(), vec![source("alpha"), source("beta")], 60);
    let transformer = Transformer::new(store.clone(), None);

    // The scheduled event goes to Collect as it is; its answer, wrapped as the Lambda
    // integration wraps it, goes on through OutputPath to Transform's payload.
    let scheduled = json!({
        "version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": "2026-11-27T23:48:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/cryptomon"], "detail": {}
    });
    let collect = &states["Collect"];
    let transform = &states[collect["Next"].as_str().unwrap()];
    // The first tick rebuilds (no state yet: it lists); the second is told of its two keys
    // through the state machine's paths, and lists nothing.
    for (time, listed) in [
        ("2026-11-27T23:48:00Z", true),
        ("2026-11-27T23:49:00Z", false),
    ] {
        let mut event = scheduled.clone();
        event["time"] = json!(time);
        let output = collector
            .handle(invoke(payload_of(collect, &event)))
            .await
            .unwrap();
        let integration =
            json!({"StatusCode": 200, "Payload": serde_json::to_value(&output).unwrap()});
        let after_collect = select(collect["OutputPath"].as_str().unwrap(), &integration);
        let answer = transformer
            .handle(invoke(payload_of(transform, &after_collect)))
            .await
            .unwrap();
        let TransformerOutput::Transformed {
            series,
            read,
            reconciled,
            ..
        } = answer
        else {
            panic!("{time}: {answer:?}");
        };
        assert_eq!((series, reconciled), (6, listed), "{time}");
        if !listed {
            // The head's version checked, and the two snapshots it was told of.
            assert_eq!(read, 1 + 2, "{time}");
        }
    }

    // Every source failed: the collector's error is caught, and the transform still runs on
    // what is stored (a stale rule needs it to), with the payload the failure path sends.
    let down = |name: &str| -> DynSource {
        Arc::new(
            FaultySource::new(SyntheticSource::new(SourceName::new(name).unwrap(), 3, 7))
                .always(SourceFault::Fail { retryable: true }),
        )
    };
    let failing = Collector::new(store.clone(), vec![down("alpha")], 60);
    let mut next_minute = scheduled.clone();
    next_minute["time"] = json!("2026-11-27T23:50:00Z");
    let err = failing
        .handle(invoke(payload_of(collect, &next_minute)))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), RETRYABLE);
    let catcher = &collect["Catch"].as_vec().unwrap()[0];
    let after_failure = &states[catcher["Next"].as_str().unwrap()];
    let answer = transformer
        .handle(invoke(payload_of(after_failure, &next_minute)))
        .await
        .unwrap();
    assert!(
        matches!(
            answer,
            TransformerOutput::Transformed {
                reconciled: true,
                ..
            }
        ),
        "told of nothing, it lists: {answer:?}"
    );
    // ...and the execution then fails with the collector's cause.
    let end = &states[after_failure["Next"].as_str().unwrap()];
    assert_eq!(end["Type"].as_str(), Some("Fail"));
    assert_eq!(
        end["CausePath"]
            .as_str()
            .map(|p| p.rsplit_once('.').unwrap().0),
        catcher["ResultPath"].as_str()
    );
}

/// The statements of a function's inline policies.
fn statements<'a>(template: &'a Yaml, name: &str) -> Vec<&'a Yaml> {
    function(template, name)["Policies"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["Statement"]
                .as_vec()
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
        .collect()
}

/// Whether a statement allows `action` on `resource` (as the template writes it, `!Sub` text
/// or a `!GetAtt` name).
fn allows(statement: &Yaml, action: &str, resource: &str) -> bool {
    let listed = |y: &Yaml| -> Vec<String> {
        match y {
            Yaml::String(s) => vec![s.clone()],
            Yaml::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    statement["Effect"].as_str() == Some("Allow")
        && listed(&statement["Action"]).iter().any(|a| a == action)
        && listed(&statement["Resource"]).iter().any(|r| r == resource)
}

const BUCKET: &str = "DataBucket.Arn";

fn objects_under(prefix: &str) -> String {
    format!("${{{BUCKET}}}/{prefix}*")
}

#[test]
fn a_fresh_bucket_reads_as_not_found_and_no_more_is_granted() {
    let t = template();
    let dir = |key: &str| key.split_once('/').unwrap().0.to_owned() + "/";
    assert_eq!(dir(SUMMARY_KEY), dir(WINDOW_KEY));
    let aggregates = dir(SUMMARY_KEY);
    // A reader of keys that may not exist yet may list the bucket, with no condition: S3
    // answers 404 for a missing key only to a caller that may list it.
    for name in ["TransformerFunction", "ApiFunction"] {
        let list = statements(&t, name)
            .into_iter()
            .filter(|s| allows(s, "s3:ListBucket", BUCKET))
            .collect::<Vec<_>>();
        assert_eq!(
            list.len(),
            1,
            "{name} must be allowed s3:ListBucket on the bucket"
        );
        assert!(
            list[0]["Condition"].is_badvalue(),
            "{name}'s s3:ListBucket must not be conditioned (an s3:prefix condition does not \
             count for S3's 404-or-403 decision)"
        );
        for prefix in [aggregates.as_str(), ALERTS_PREFIX] {
            assert!(
                statements(&t, name).iter().any(|s| allows(
                    s,
                    "s3:GetObject",
                    &objects_under(prefix)
                )),
                "{name} must read {prefix}"
            );
        }
    }
    // Candle ranges read the history days.
    assert!(
        statements(&t, "ApiFunction").iter().any(|s| allows(
            s,
            "s3:GetObject",
            &objects_under(HISTORY_PREFIX)
        )),
        "the api must read {HISTORY_PREFIX}"
    );
    // The collector only writes snapshots (and reads a config key that must exist).
    let collector = statements(&t, "CollectorFunction");
    assert!(
        collector
            .iter()
            .all(|s| !allows(s, "s3:ListBucket", BUCKET))
    );
    assert!(
        collector
            .iter()
            .any(|s| allows(s, "s3:PutObject", &objects_under(RAW_PREFIX)))
    );
    let writes: Vec<_> = collector
        .iter()
        .filter(|s| s["Action"].as_str() == Some("s3:PutObject"))
        .collect();
    assert_eq!(
        writes.len(),
        1,
        "the collector writes raw/ and nothing else"
    );
    // The transformer writes the aggregates and alert events, never a snapshot.
    let transformer = statements(&t, "TransformerFunction");
    for prefix in [aggregates.as_str(), ALERTS_PREFIX] {
        assert!(
            transformer
                .iter()
                .any(|s| allows(s, "s3:PutObject", &objects_under(prefix)))
        );
    }
    assert!(
        !transformer
            .iter()
            .any(|s| allows(s, "s3:PutObject", &objects_under(RAW_PREFIX)))
    );
    // The api writes nothing.
    assert!(statements(&t, "ApiFunction").iter().all(|s| !allows(
        s,
        "s3:PutObject",
        &objects_under(aggregates.as_str())
    )));
}

/// The bucket's lifecycle rules; a rule under `!If [condition, rule, !Ref AWS::NoValue]` is
/// read as the rule.
fn lifecycle_rules(t: &Yaml) -> Vec<&Yaml> {
    t["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|r| match r {
            Yaml::Array(branches) => &branches[1],
            rule => rule,
        })
        .collect()
}

#[test]
fn lifecycle_rules_name_the_codes_prefixes() {
    let t = template();
    let rules = lifecycle_rules(&t);
    let prefixes: BTreeSet<&str> = rules.iter().filter_map(|r| r["Prefix"].as_str()).collect();
    assert_eq!(
        prefixes,
        BTreeSet::from([RAW_PREFIX, ALERTS_PREFIX, HISTORY_PREFIX])
    );
    // History is kept for good: its rule may move it to a cheaper class, never expire it.
    let history = rules
        .iter()
        .find(|r| r["Prefix"].as_str() == Some(HISTORY_PREFIX))
        .unwrap();
    assert!(history["ExpirationInDays"].is_badvalue());
    let transitions = history["Transitions"].as_vec().unwrap();
    assert_eq!(transitions.len(), 1);
    assert_eq!(transitions[0]["StorageClass"].as_str(), Some("STANDARD_IA"));
    let parameter = transitions[0]["TransitionInDays"].as_str().unwrap();
    // S3 refuses a move to Standard-IA before 30 days; 0 is the condition that drops the rule.
    for days in t["Parameters"][parameter]["AllowedValues"]
        .as_vec()
        .unwrap()
    {
        let days = days.as_i64().unwrap();
        assert!(days == 0 || days >= 30, "{parameter} allows {days}");
    }
}

/// The Glue type of each history column: Parquet's UTC millisecond timestamps are `timestamp`.
fn glue_type(column: &str) -> &'static str {
    match column {
        "tick" | "collected_at" => "timestamp",
        "price" | "volume" => "double",
        "source" | "pair" | "origin" => "string",
        other => panic!("give the history column {other} its Glue type here and in the template"),
    }
}

#[test]
fn the_history_table_reads_what_the_transformer_writes() {
    let t = template();
    let table = &t["Resources"]["HistoryTable"];
    assert_eq!(table["Type"].as_str(), Some("AWS::Glue::Table"));
    let input = &table["Properties"]["TableInput"];
    let storage = &input["StorageDescriptor"];
    // `!Sub` text: the bucket's name, then the code's prefix.
    let location = format!("s3://${{DataBucket}}/{HISTORY_PREFIX}");
    assert_eq!(storage["Location"].as_str(), Some(location.as_str()));
    let parameters = &input["Parameters"];
    assert_eq!(
        parameters["storage.location.template"].as_str(),
        Some(format!("{location}date=${{!date}}/").as_str()),
        "each day is the Hive partition date=YYYY-MM-DD under the table's location"
    );
    let columns: Vec<(&str, &str)> = storage["Columns"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| (c["Name"].as_str().unwrap(), c["Type"].as_str().unwrap()))
        .collect();
    let written: Vec<(&str, &str)> = HISTORY_COLUMNS.iter().map(|&c| (c, glue_type(c))).collect();
    assert_eq!(
        columns, written,
        "the table's columns are the history writer's"
    );
    let keys: Vec<&str> = input["PartitionKeys"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|k| k["Name"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["date"]);
    // Partition projection, one partition a day up to today, in the key's own format.
    for (property, value) in [
        ("projection.enabled", "true"),
        ("projection.date.type", "date"),
        ("projection.date.format", "yyyy-MM-dd"),
        ("projection.date.interval", "1"),
        ("projection.date.interval.unit", "DAYS"),
    ] {
        assert_eq!(parameters[property].as_str(), Some(value), "{property}");
    }
    let range = parameters["projection.date.range"].as_str().unwrap();
    assert!(range.ends_with(",NOW"), "projection.date.range {range:?}");
    assert!(
        storage["SerdeInfo"]["SerializationLibrary"]
            .as_str()
            .unwrap()
            .ends_with("ParquetHiveSerDe")
    );
    // The transformer writes the days; nothing else may.
    let writes = |name: &str| {
        statements(&t, name)
            .iter()
            .any(|s| allows(s, "s3:PutObject", &objects_under(HISTORY_PREFIX)))
    };
    assert!(writes("TransformerFunction"));
    assert!(!writes("CollectorFunction") && !writes("ApiFunction"));
}

/// The transformer reads the backfilled hours it takes in (`cryptomon backfill --store s3://…`
/// writes them too), and writes them on a fresh deployment's first run: a denied read would
/// fail every reconciliation that lists them.
#[test]
fn the_transformer_may_read_and_write_backfills() {
    let t = template();
    let statements = statements(&t, "TransformerFunction");
    let under = objects_under(BACKFILL_PREFIX);
    for action in ["s3:GetObject", "s3:PutObject"] {
        assert!(
            statements.iter().any(|s| allows(s, action, &under)),
            "the transformer must be allowed {action} on {under}"
        );
    }
}

#[test]
fn alarms_watch_metrics_the_functions_emit() {
    use cryptomon_lambda::metrics::{
        DATA_AGE, NAMESPACE, SOURCES_FAILED, STAGE_DIMENSION, STAGE_ENV,
    };

    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert!(
        !env[STAGE_ENV].is_badvalue(),
        "the functions must get {STAGE_ENV}"
    );
    let alarm = |name: &str| &t["Resources"][name]["Properties"];
    for (name, metric) in [
        ("SourceFailingAlarm", SOURCES_FAILED),
        ("StaleDataAlarm", DATA_AGE),
    ] {
        let a = alarm(name);
        assert_eq!(a["Namespace"].as_str(), Some(NAMESPACE), "{name}");
        assert_eq!(a["MetricName"].as_str(), Some(metric), "{name}");
        let dimensions = a["Dimensions"].as_vec().unwrap();
        assert_eq!(dimensions.len(), 1, "{name}: the metric's [Stage] set");
        assert_eq!(
            dimensions[0]["Name"].as_str(),
            Some(STAGE_DIMENSION),
            "{name}"
        );
    }
    // SourcesFailed is published only on a failure, DataAge by every transform: a missing
    // datapoint means "healthy" for one and "no transform ran" for the other.
    assert_eq!(
        alarm("SourceFailingAlarm")["TreatMissingData"].as_str(),
        Some("notBreaching")
    );
    assert_eq!(
        alarm("StaleDataAlarm")["TreatMissingData"].as_str(),
        Some("breaching")
    );
    // Every alarm tells the alert topic.
    for (name, resource) in t["Resources"].as_hash().unwrap() {
        if resource["Type"].as_str() == Some("AWS::CloudWatch::Alarm") {
            let actions = strings(&resource["Properties"]["AlarmActions"]);
            assert_eq!(actions, ["AlertTopic"], "{name:?}");
        }
    }
}

#[test]
fn secrets_come_from_the_stages_ssm_path_and_nowhere_else() {
    use cryptomon_lambda::settings::SECRETS_PATH_ENV;

    let t = template();
    assert_eq!(
        t["Parameters"]["CryptomonConfig"]["NoEcho"].as_bool(),
        Some(true),
        "the config may hold webhook URLs with tokens"
    );
    let path_arn =
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/cryptomon/${Stage}";
    for name in ["CollectorFunction", "TransformerFunction"] {
        let env = &function(&t, name)["Environment"]["Variables"];
        assert_eq!(
            env[SECRETS_PATH_ENV].as_str(),
            Some("/cryptomon/${Stage}/"),
            "{name}"
        );
        let statements = statements(&t, name);
        // The path is listed without its trailing `/`; an `ssm:` config is one parameter under it.
        assert!(
            statements
                .iter()
                .any(|s| allows(s, "ssm:GetParametersByPath", path_arn)),
            "{name}"
        );
        assert!(
            statements
                .iter()
                .any(|s| allows(s, "ssm:GetParameter", &format!("{path_arn}/*"))),
            "{name}"
        );
    }
    assert!(
        function(&t, "ApiFunction")["Environment"].is_badvalue(),
        "the api function needs no config and no secret"
    );
    // Nothing the template shows holds a secret: no output names the config.
    for (name, output) in t["Outputs"].as_hash().unwrap() {
        let value = format!("{:?}", output["Value"]);
        assert!(!value.contains("CryptomonConfig"), "{name:?}");
    }
}

/// Each function's largest peak RSS at the default config (12 series), in MiB, measured by
/// `scripts/lambda-memory.py` (docs/deploy.md, "Memory").
const MEASURED_PEAK_MIB: [(&str, &str, f64); 3] = [
    ("CollectorMemory", "CollectorFunction", 17.6),
    ("TransformerMemory", "TransformerFunction", 33.7),
    ("ApiMemory", "ApiFunction", 26.6),
];

#[test]
fn memory_defaults_cover_the_measured_peaks_with_headroom() {
    let t = template();
    for (parameter, function_name, peak) in MEASURED_PEAK_MIB {
        let memory = function(&t, function_name)["MemorySize"].as_str();
        assert_eq!(memory, Some(parameter), "{function_name} takes {parameter}");
        let default = t["Parameters"][parameter]["Default"].as_i64().unwrap() as f64;
        assert!(
            default >= peak * 1.5,
            "{parameter}'s default {default} MB leaves less than half again the measured peak \
             {peak} MiB"
        );
        assert!(t["Parameters"][parameter]["MinValue"].as_i64() >= Some(128));
    }
}
