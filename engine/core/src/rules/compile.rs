//! Compiling mapping files: templates once, then each row on top of its templates, into a
//! [`CompiledMapping`] looked up by source event name.

use super::condition::CompiledCondition;
use super::fields::{FieldBits, FieldPlan, ObjectPlan, Scope, compile_flat};
use super::payload::Payload;
use super::resolve::PathTable;
use super::spec::{MappingFile, Mode, Row};
use super::transform::CompileContext;
use super::warning::Warning;
use super::{CompileError, Pointer};
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Room kept in a row's payload fields for the ones a destination plugin's `encode` adds around
/// them, so that adding them does not grow the vector: the built-in destination adds at most four
/// (an event name, id and time, and a flag). A plugin that adds more still works, with one more
/// allocation ([`DestinationPlugin::encode`](crate::destination::DestinationPlugin::encode)).
const ENCODE_ROOM: usize = 4;

/// One compiled row.
#[derive(Debug, Clone)]
pub struct CompiledRow {
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub mode: Mode,
    pub enabled: bool,
    /// Where the row is written: its JSON pointer in the file it came from (`/rows/12`), until
    /// the destination places it in that file (`mappings/tiktok.yaml:40`,
    /// [`CompiledMapping::place_rows`]).
    pub location: Arc<str>,
    when: Option<CompiledCondition>,
    fields: ObjectPlan,
}

impl CompiledRow {
    /// `Source → Target`, for messages.
    pub fn label(&self) -> String {
        format!("{} → {}", self.source, self.target)
    }

    /// Whether the row's `when` condition (if any) holds for the event.
    pub fn applies(&self, event: &Value) -> bool {
        self.when.as_ref().is_none_or(|c| c.holds(event))
    }

    /// Builds the row's payload fields from the event.
    pub fn build<'a>(
        &'a self,
        event: &'a Value,
        warnings: &mut Vec<Warning>,
    ) -> Vec<(&'a str, Payload<'a>)> {
        self.fields
            .build_with_room(Scope::event(event), warnings, ENCODE_ROOM, None)
    }

    /// [`CompiledRow::build`] with the event's paths resolved by the table of the row's group
    /// ([`RowGroup::paths`]): the same payload, fewer lookups. With `present`, also sets the bit
    /// of each of the row's fields that got a value (in the order of
    /// [`CompiledRow::field_labels`]).
    pub fn build_resolved<'a>(
        &'a self,
        event: &'a Value,
        resolved: &[Option<&'a Value>],
        warnings: &mut Vec<Warning>,
        present: Option<&mut FieldBits>,
    ) -> Vec<(&'a str, Payload<'a>)> {
        let scope = Scope::resolved(event, resolved);
        self.fields
            .build_with_room(scope, warnings, ENCODE_ROOM, present)
    }

    /// The payload field of each of the row's fields, in the order of [`FieldBits`].
    pub fn field_labels(&self) -> Vec<Arc<str>> {
        self.fields.field_labels()
    }
}

/// Every row of a mapping, by source event name.
#[derive(Debug, Clone, Default)]
pub struct CompiledMapping {
    groups: HashMap<Arc<str>, RowGroup>,
}

/// The rows of one source event name, in file order, and the plain paths they read from the
/// event, looked up once per event ([`PathTable::resolve`]).
#[derive(Debug, Clone, Default)]
pub struct RowGroup {
    rows: Vec<CompiledRow>,
    paths: PathTable,
}

impl RowGroup {
    /// The rows, in file order (switched-off rows included).
    pub fn rows(&self) -> &[CompiledRow] {
        &self.rows
    }

    /// The paths the rows read from the event; [`CompiledRow::build_resolved`] takes their values.
    pub fn paths(&self) -> &PathTable {
        &self.paths
    }
}

impl CompiledMapping {
    /// The rows for a source event name, in file order (switched-off rows included).
    pub fn rows_for(&self, source: &str) -> &[CompiledRow] {
        self.groups
            .get(source)
            .map(RowGroup::rows)
            .unwrap_or_default()
    }

    /// The rows for a source event name and the paths they read, if it has any row.
    pub fn group_for(&self, source: &str) -> Option<&RowGroup> {
        self.groups.get(source).filter(|g| !g.rows.is_empty())
    }

    pub fn push(&mut self, mut row: CompiledRow) {
        let group = self.groups.entry(row.source.clone()).or_default();
        row.fields.intern_paths(&mut group.paths);
        group.rows.push(row);
    }

    /// How many rows there are, switched-off ones included.
    pub fn len(&self) -> usize {
        self.groups.values().map(|g| g.rows.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Gives every row its place in the files: `place` turns a row's JSON pointer
    /// ([`CompiledRow::location`]) into where it is written (`file:line`).
    pub fn place_rows(&mut self, place: impl Fn(&str) -> String) {
        for row in self.groups.values_mut().flat_map(|g| &mut g.rows) {
            row.location = place(&row.location).into();
        }
    }
}

/// Compiles rows against the templates of one mapping file.
pub struct MappingCompiler {
    /// Each template's fields; `None` for one with errors (already said: a row that uses it is
    /// compiled without it, so that its own errors are said in the same run).
    templates: IndexMap<String, Option<IndexMap<String, FieldPlan>>>,
    default_use: Vec<String>,
    ctx: CompileContext,
}

impl MappingCompiler {
    /// Compiles the file's templates; the errors of templates and `defaults.use` come with it,
    /// placed in the mapping file (the rows can still be compiled, for their own errors).
    pub fn new(file: &MappingFile, ctx: CompileContext) -> (Self, Vec<CompileError>) {
        let mut errors = Vec::new();
        let mut templates = IndexMap::new();
        let at = Pointer::root().key("templates");
        for (name, fields) in &file.templates {
            let plans = compile_flat(fields, "", &at.key(name), ctx)
                .map_err(|e| errors.extend(e))
                .ok();
            templates.insert(name.clone(), plans);
        }
        let at = Pointer::root().key("defaults").key("use");
        for (i, name) in file.defaults.use_templates.iter().enumerate() {
            if !file.templates.contains_key(name) {
                errors.push(at.index(i).error(unknown_template(name, &file.templates)));
            }
        }
        let compiler = Self {
            templates,
            default_use: file.defaults.use_templates.clone(),
            ctx,
        };
        (compiler, errors)
    }

    /// Compiles one row (from the mapping file, or a destination's custom event); errors are placed
    /// under `at`, in whichever file the row came from.
    pub fn row(&self, row: &Row, at: &Pointer) -> Result<CompiledRow, Vec<CompileError>> {
        let mut errors = Vec::new();
        let mut flat: IndexMap<String, FieldPlan> = IndexMap::new();
        let defaults = self.default_use.iter().map(|n| (n, None));
        let own_at = at.key("use");
        let own = row
            .use_templates
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, n)| (n, Some(i)));
        for (name, index) in defaults.chain(own) {
            match self.templates.get(name) {
                Some(Some(plans)) => {
                    flat.extend(plans.iter().map(|(k, p)| (k.clone(), p.clone())));
                }
                // Its errors are said where it is written (a default in `defaults.use`).
                Some(None) => {}
                None if index.is_none() => {}
                None => {
                    let at = index.map_or_else(|| at.clone(), |i| own_at.index(i));
                    errors.push(at.error(unknown_template(name, &self.templates)));
                }
            }
        }
        match compile_flat(&row.fields, "", &at.key("fields"), self.ctx) {
            Ok(own) => flat.extend(own),
            Err(e) => errors.extend(e),
        }
        let when = match &row.when {
            Some(c) => CompiledCondition::compile(c, &at.key("when"))
                .map(Some)
                .unwrap_or_else(|e| {
                    errors.extend(e);
                    None
                }),
            None => None,
        };
        if row.source.trim().is_empty() || row.target.trim().is_empty() {
            errors.push(at.error("`source` and `target` must name events"));
        }
        // As an event's own `event_name`: a line break would also break the one-line messages
        // that name the event, and the pixel's name would differ from the server's.
        for (key, name) in [("source", &row.source), ("target", &row.target)] {
            if crate::event::has_control(name) {
                errors.push(
                    at.key(key)
                        .error("must not hold control characters (such as a line break or a tab)"),
                );
            }
        }
        let fields = ObjectPlan::from_flat(flat).map_err(|m| at.key("fields").error(m));
        match fields {
            Ok(fields) if errors.is_empty() => Ok(CompiledRow {
                source: row.source.as_str().into(),
                target: row.target.as_str().into(),
                mode: row.mode,
                enabled: row.enabled,
                location: at.as_str().into(),
                when,
                fields,
            }),
            fields => {
                errors.extend(fields.err());
                Err(errors)
            }
        }
    }
}

fn unknown_template<T>(name: &str, templates: &IndexMap<String, T>) -> String {
    let names: Vec<&str> = templates.keys().map(String::as_str).collect();
    if names.is_empty() {
        return format!("no template named `{name}`: this file defines no `templates`");
    }
    let hint = crate::load::did_you_mean(name, &names);
    format!(
        "no template named `{name}`; {hint}templates: {}",
        names.join(", ")
    )
}

/// Compiles a whole mapping file. Errors are placed in that file.
pub fn compile_mapping(
    file: &MappingFile,
    ctx: CompileContext,
) -> Result<CompiledMapping, Vec<CompileError>> {
    let (compiler, mut errors) = MappingCompiler::new(file, ctx);
    let mut mapping = CompiledMapping::default();
    let at = Pointer::root().key("rows");
    for (i, row) in file.rows.iter().enumerate() {
        match compiler.row(row, &at.index(i)) {
            Ok(r) => mapping.push(r),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(mapping)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(yaml: &str) -> Result<CompiledMapping, Vec<CompileError>> {
        let file: MappingFile = serde_yaml::from_str(yaml).unwrap();
        compile_mapping(&file, CompileContext::default())
    }

    /// A mapping of one row, `A` to `B`, with these `fields` (YAML lines indented by six spaces).
    fn one_row(fields: &str) -> CompiledMapping {
        let yaml = format!("rows:\n  - source: A\n    target: B\n    fields:\n{fields}");
        mapping(&yaml).unwrap()
    }

    #[test]
    fn templates_rows_each_and_overrides() {
        let m = mapping(
            r#"
defaults: { use: [base] }
templates:
  base:
    event_id: $.event_id
    user.email: { path: "$.profile_properties['$email']", transform: [trim, lower, sha256] }
    properties.currency: { const: EUR }
rows:
  - source: Placed Order
    target: Purchase
    fields:
      properties.currency: $.properties.currency
      properties.contents:
        each: $.properties.items[*]
        fields:
          content_id: { path: $, transform: [content_id] }
          quantity: { path: $.quantity, default: 1 }
"#,
        )
        .unwrap();
        let ev = json!({"event_id": "o1", "profile_properties": {"$email": " Jane@Example.com "},
                        "properties": {"currency": "USD", "items": [{"product_id": 1}, {"variant_id": "v2", "quantity": 2}]}});
        let row = &m.rows_for("Placed Order")[0];
        let mut warnings = vec![];
        let built = row.build(&ev, &mut warnings);
        // Room for a destination's own fields, as `encode` adds them, without growing.
        assert!(built.capacity() >= built.len() + ENCODE_ROOM);
        let resolved_room = row.build_resolved(&ev, &[], &mut warnings, None);
        assert!(resolved_room.capacity() >= resolved_room.len() + ENCODE_ROOM);
        let out = Payload::Object(built).to_value();
        assert_eq!(
            out,
            json!({"event_id": "o1",
                   "user": {"email": "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d"},
                   "properties": {"currency": "USD", "contents": [
                       {"content_id": "1", "quantity": 1}, {"content_id": "v2", "quantity": 2}]}})
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn first_of_takes_the_first_non_empty_value_resolved_or_walked() {
        let m = one_row(
            r#"
      bare: { first_of: ["$.p['$x']", "$.q['$x']", "$.q.items[0]"] }
      mixed: { first_of: ["$.p['$x']", { path: "$.q['$x']", transform: [upper] }] }
      inside:
        each: "$.q.items[*]"
        fields: { id: { first_of: [$.a, $.b] } }
"#,
        );
        let group = m.group_for("A").unwrap();
        let row = &group.rows()[0];
        let cases = [
            (
                json!({"p": {"$x": "p"}, "q": {"$x": "q"}}),
                json!({"bare": "p", "mixed": "p"}),
            ),
            (
                json!({"p": {"$x": ""}, "q": {"$x": "q", "items": [{"b": 2}]}}),
                json!({"bare": "q", "mixed": "Q", "inside": [{"id": 2}]}),
            ),
            (
                json!({"p": {"$x": null}, "q": {"items": [{"a": 1, "b": 2}]}}),
                json!({"bare": {"a": 1, "b": 2}, "inside": [{"id": 1}]}),
            ),
            (json!({"p": 1, "q": []}), json!({})),
        ];
        for (event, expected) in cases {
            let resolved = group.paths().resolve(&event);
            let mut warnings = vec![];
            let fast = row.build_resolved(&event, &resolved, &mut warnings, None);
            let walked = row.build(&event, &mut warnings);
            assert_eq!(Payload::Object(fast).to_value(), expected, "{event}");
            assert_eq!(Payload::Object(walked).to_value(), expected, "{event}");
        }
    }

    #[test]
    fn building_marks_the_fields_that_got_a_value_nested_ones_one_by_one() {
        let m = one_row(
            r#"
      event_id: $.event_id
      user.email: $.email
      user.phone: $.phone
      properties.contents: { each: "$.items[*]", fields: { id: $.id } }
      properties.value: $.value
      note: { path: $.note, default: "" }
"#,
        );
        let row = &m.rows_for("A")[0];
        let field_labels = row.field_labels();
        let labels: Vec<&str> = field_labels.iter().map(|l| &**l).collect();
        assert_eq!(
            labels,
            [
                "event_id",
                "user.email",
                "user.phone",
                "properties.contents",
                "properties.value",
                "note"
            ]
        );
        let group = m.group_for("A").expect("the row's group");
        let present = |ev: &Value| {
            let resolved = group.paths().resolve(ev);
            let mut bits = FieldBits::default();
            let built = row.build_resolved(ev, &resolved, &mut vec![], Some(&mut bits));
            let set: Vec<bool> = (0..labels.len()).map(|i| bits.has(i)).collect();
            (set, built.len())
        };
        let ev = json!({"event_id": "e", "phone": "+1", "items": [{"id": 1}]});
        // `user` is one field of the payload, and holds `phone` only. `note` falls back to an
        // empty default: no value.
        let got = vec![true, false, true, true, false, false];
        assert_eq!(present(&ev), (got, 3));
        let ev = json!({"email": "a@b", "value": 3, "items": [], "note": "n"});
        let got = vec![false, true, false, false, true, true];
        assert_eq!(present(&ev), (got, 3));
        assert_eq!(present(&json!({})), (vec![false; 6], 0));
    }

    #[test]
    fn empty_values_are_left_out_and_failures_warned() {
        let m = one_row(
            r#"
      user.phone: { path: "$.p", transform: [e164, sha256] }
      page.url: $.url
      x: { path: $.missing, default: fallback }
"#,
        );
        let mut warnings = vec![];
        let ev = json!({"p": "12", "url": ""});
        let out = m.rows_for("A")[0].build(&ev, &mut warnings);
        assert_eq!(Payload::Object(out).to_value(), json!({"x": "fallback"}));
        assert_eq!(warnings.len(), 1);
        assert_eq!(&*warnings[0].field, "user.phone");
    }

    #[test]
    fn errors_point_at_the_rule() {
        let errs = mapping(
            r#"
templates:
  base:
    bad: "properties.x"
rows:
  - source: A
    target: B
    use: [base, nope]
    when: {path: $.x, op: matches, value: "("}
    fields:
      a: { path: $.a, const: 1 }
      user: $.u
      user.email: $.e
"#,
        )
        .unwrap_err();
        let pointers: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        // A template's error hides none of the row's own.
        assert_eq!(
            pointers,
            [
                "/templates/base/bad",
                "/rows/0/use/1",
                "/rows/0/fields/a",
                "/rows/0/when/value"
            ]
        );
        let errs = mapping(
            r#"
rows:
  - source: A
    target: B
    use: [nope]
    when: {path: $.x, op: matches, value: "("}
    fields:
      a: { path: $.a, const: 1 }
"#,
        )
        .unwrap_err();
        let pointers: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/rows/0/use/0", "/rows/0/fields/a", "/rows/0/when/value"]
        );
        let errs = mapping("rows: [{source: A, target: B, fields: {user: $.u, user.email: $.e}}]")
            .unwrap_err();
        assert!(errs[0].message.contains("already a field"), "{:?}", errs);
        let errs = mapping(
            "rows: [{source: A, target: B, fields: {items: {each: \"$.i[*]\", fields: {}}}}]",
        )
        .unwrap_err();
        assert_eq!(errs[0].pointer, "/rows/0/fields/items/fields");
        assert!(
            errs[0]
                .message
                .starts_with("`each` needs at least one field"),
            "{errs:?}"
        );
    }
}
