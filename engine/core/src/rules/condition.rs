//! Conditions compiled for evaluation: paths parsed, regexes built and values checked at load.
//!
//! A path may find several nodes: a positive operator holds when it holds for any node found, and
//! `not_equals`, `not_in` and `not_exists` are compiled as `not` of their positive twin, so they hold
//! when no node meets it. A missing value (or `null`) meets no positive test: `equals`, `in`, `exists`
//! and the ordering and text operators are false on it, their negations true.

use super::path::CompiledPath;
use super::spec::{Comparison, Condition, Operator};
use super::{CompileError, Pointer};
use regex::Regex;
use serde_json::Value;

/// A condition ready to evaluate.
#[derive(Debug, Clone)]
pub enum CompiledCondition {
    All(Vec<CompiledCondition>),
    Any(Vec<CompiledCondition>),
    Not(Box<CompiledCondition>),
    Test { path: CompiledPath, test: Test },
}

#[derive(Debug, Clone)]
pub enum Test {
    Equals(Value),
    In(Vec<Value>),
    Exists,
    Contains(Value),
    StartsWith(String),
    EndsWith(String),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Matches(Regex),
}

impl CompiledCondition {
    /// Compiles `cond`; errors are placed under `at`.
    pub fn compile(cond: &Condition, at: &Pointer) -> Result<Self, Vec<CompileError>> {
        match cond {
            Condition::All(all) => compile_list(&all.all, &at.key("all")).map(Self::All),
            Condition::Any(any) => compile_list(&any.any, &at.key("any")).map(Self::Any),
            Condition::Not(not) => {
                Self::compile(&not.not, &at.key("not")).map(|c| Self::Not(c.into()))
            }
            Condition::Compare(cmp) => compile_comparison(cmp, at).map_err(|e| vec![e]),
        }
    }

    /// Whether the event (or item) `root` meets the condition.
    pub fn holds(&self, root: &Value) -> bool {
        match self {
            Self::All(all) => all.iter().all(|c| c.holds(root)),
            Self::Any(any) => any.iter().any(|c| c.holds(root)),
            Self::Not(c) => !c.holds(root),
            Self::Test { path, test } => {
                let mut holds = false;
                path.for_each(root, &mut |v| {
                    holds = holds || (!v.is_null() && test.holds_for(v))
                });
                holds
            }
        }
    }
}

fn compile_list(
    list: &[Condition],
    at: &Pointer,
) -> Result<Vec<CompiledCondition>, Vec<CompileError>> {
    let mut out = Vec::with_capacity(list.len());
    let mut errors = Vec::new();
    for (i, c) in list.iter().enumerate() {
        match CompiledCondition::compile(c, &at.index(i)) {
            Ok(c) => out.push(c),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn compile_comparison(cmp: &Comparison, at: &Pointer) -> Result<CompiledCondition, CompileError> {
    let path = CompiledPath::compile(&cmp.path).map_err(|m| at.key("path").error(m))?;
    let value_at = at.key("value");
    let value = cmp.value.as_ref().filter(|v| !v.is_null());
    let need =
        |what: &str| value_at.error(format!("`{}` needs {what} as `value`", op_name(cmp.op)));
    let number = || {
        value
            .and_then(Value::as_f64)
            .ok_or_else(|| need("a number"))
    };
    let text = || {
        value
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| need("a string"))
    };
    let list = || match value {
        Some(Value::Array(items)) => Ok(items.clone()),
        _ => Err(need("an array")),
    };
    let any = || value.cloned().ok_or_else(|| need("a value"));
    let test = match cmp.op {
        Operator::Equals | Operator::NotEquals => Test::Equals(any()?),
        Operator::In | Operator::NotIn => Test::In(list()?),
        Operator::Exists | Operator::NotExists => {
            if value.is_some() {
                return Err(value_at.error(format!("`{}` takes no `value`", op_name(cmp.op))));
            }
            Test::Exists
        }
        Operator::Contains => Test::Contains(any()?),
        Operator::StartsWith => Test::StartsWith(text()?),
        Operator::EndsWith => Test::EndsWith(text()?),
        Operator::Gt => Test::Gt(number()?),
        Operator::Gte => Test::Gte(number()?),
        Operator::Lt => Test::Lt(number()?),
        Operator::Lte => Test::Lte(number()?),
        Operator::Matches => {
            let pattern = text()?;
            Test::Matches(Regex::new(&pattern).map_err(|e| {
                let detail = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                value_at.error(format!("not a valid regular expression ({detail})"))
            })?)
        }
    };
    let positive = CompiledCondition::Test { path, test };
    Ok(match cmp.op {
        // The negative operators hold when no node found meets the positive test, missing included.
        Operator::NotEquals | Operator::NotIn | Operator::NotExists => {
            CompiledCondition::Not(Box::new(positive))
        }
        _ => positive,
    })
}

fn op_name(op: Operator) -> &'static str {
    match op {
        Operator::Equals => "equals",
        Operator::NotEquals => "not_equals",
        Operator::In => "in",
        Operator::NotIn => "not_in",
        Operator::Exists => "exists",
        Operator::NotExists => "not_exists",
        Operator::Contains => "contains",
        Operator::StartsWith => "starts_with",
        Operator::EndsWith => "ends_with",
        Operator::Gt => "gt",
        Operator::Gte => "gte",
        Operator::Lt => "lt",
        Operator::Lte => "lte",
        Operator::Matches => "matches",
    }
}

/// JSON equality, except that numbers compare by value (`1` equals `1.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // Whole numbers as JSON parsing keeps them (`i64`, `u64`) exactly: two ids past 2^53
        // that differ are not the same float's. Others as floats (`1` is `1.0`).
        (Value::Number(x), Value::Number(y)) => match (whole(x), whole(y)) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// A number that JSON parsing kept as a whole number, exactly.
fn whole(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// A number, or a string that holds one (`"12.50"`).
pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => crate::text::number(s)?.as_f64(),
        _ => None,
    }
}

impl Test {
    fn holds_for(&self, v: &Value) -> bool {
        match self {
            Test::Equals(x) => same(v, x),
            Test::In(xs) => xs.iter().any(|x| same(v, x)),
            Test::Exists => true,
            Test::Contains(x) => match (v, x) {
                (Value::String(s), Value::String(needle)) => s.contains(needle.as_str()),
                (Value::Array(items), x) => items.iter().any(|i| same(i, x)),
                _ => false,
            },
            Test::StartsWith(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Test::EndsWith(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            Test::Gt(x) => as_number(v).is_some_and(|n| n > *x),
            Test::Gte(x) => as_number(v).is_some_and(|n| n >= *x),
            Test::Lt(x) => as_number(v).is_some_and(|n| n < *x),
            Test::Lte(x) => as_number(v).is_some_and(|n| n <= *x),
            Test::Matches(re) => v.as_str().is_some_and(|s| re.is_match(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(yaml: &str) -> CompiledCondition {
        let c: Condition = serde_yaml::from_str(yaml).unwrap();
        CompiledCondition::compile(&c, &Pointer::root()).unwrap()
    }

    fn compile_err(yaml: &str) -> String {
        let c: Condition = serde_yaml::from_str(yaml).unwrap();
        let e = CompiledCondition::compile(&c, &Pointer::root()).unwrap_err();
        format!("{} {}", e[0].pointer, e[0].message)
    }

    #[test]
    fn whole_numbers_are_compared_exactly_and_others_as_floats() {
        let parsed = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        // Two ids past 2^53 that one float would hold alike.
        let (a, b) = (parsed("9007199254740993"), parsed("9007199254740992"));
        assert!(!same(&a, &b));
        assert!(same(&a, &parsed("9007199254740993")));
        let (big, big_next) = (
            parsed("18446744073709551615"),
            parsed("18446744073709551614"),
        );
        assert!(!same(&big, &big_next));
        assert!(same(&parsed("-3"), &parsed("-3")));
        assert!(same(&parsed("1"), &parsed("1.0")));
        assert!(!same(&parsed("1"), &parsed("1.5")));
    }

    #[test]
    fn every_operator() {
        let ev = json!({"p": {"n": 10, "s": "12.5", "name": "Blue Shirt", "tags": ["a", "b"], "nul": null}});
        let cases = [
            ("{path: $.p.n, op: equals, value: 10.0}", true),
            ("{path: $.p.n, op: not_equals, value: 10}", false),
            ("{path: $.p.missing, op: not_equals, value: 10}", true),
            ("{path: $.p.name, op: in, value: [x, Blue Shirt]}", true),
            ("{path: $.p.name, op: not_in, value: [x]}", true),
            ("{path: $.p.name, op: exists}", true),
            ("{path: $.p.nul, op: exists}", false),
            ("{path: $.p.nul, op: not_exists}", true),
            ("{path: $.p.name, op: contains, value: Shirt}", true),
            ("{path: $.p.tags, op: contains, value: b}", true),
            ("{path: $.p.tags, op: contains, value: c}", false),
            ("{path: $.p.name, op: starts_with, value: Blue}", true),
            ("{path: $.p.name, op: ends_with, value: Blue}", false),
            ("{path: $.p.s, op: gt, value: 12}", true),
            ("{path: $.p.n, op: gte, value: 10}", true),
            ("{path: $.p.n, op: lt, value: 10}", false),
            ("{path: $.p.n, op: lte, value: 10}", true),
            ("{path: $.p.name, op: matches, value: '^Bl.e'}", true),
            ("{path: $.p.missing, op: gt, value: 0}", false),
            ("{path: '$.p.tags[*]', op: equals, value: b}", true),
            ("{path: '$.p.tags[*]', op: not_equals, value: b}", false),
        ];
        for (yaml, expected) in cases {
            assert_eq!(cond(yaml).holds(&ev), expected, "{yaml}");
        }
    }

    #[test]
    fn combinators() {
        let ev = json!({"a": 1, "b": 2});
        assert!(
            cond("{all: [{path: $.a, op: equals, value: 1}, {path: $.b, op: equals, value: 2}]}")
                .holds(&ev)
        );
        assert!(
            !cond("{all: [{path: $.a, op: equals, value: 1}, {path: $.b, op: equals, value: 3}]}")
                .holds(&ev)
        );
        assert!(
            cond("{any: [{path: $.a, op: equals, value: 5}, {path: $.b, op: equals, value: 2}]}")
                .holds(&ev)
        );
        assert!(cond("{not: {path: $.a, op: equals, value: 5}}").holds(&ev));
    }

    #[test]
    fn bad_conditions_are_refused_at_load() {
        assert_eq!(
            compile_err("{path: $.a, op: matches, value: '(unclosed'}")
                .split_once(' ')
                .unwrap()
                .0,
            "/value"
        );
        assert!(compile_err("{path: $.a, op: gt, value: x}").contains("needs a number"));
        assert!(compile_err("{path: $.a, op: in, value: x}").contains("needs an array"));
        assert!(compile_err("{path: $.a, op: exists, value: 1}").contains("takes no `value`"));
        assert!(compile_err("{any: [{path: a, op: exists}]}").starts_with("/any/0/path"));
    }
}
