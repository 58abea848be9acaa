//! Field plans: how each field of a destination payload is built from an event, compiled once.
//!
//! A flat field map (`user.email`, `properties.value`, ...) becomes a tree of [`ObjectPlan`]s. Per
//! event, building walks the tree into a [`Payload`]: paths are direct lookups, values and keys are
//! borrowed unless a transform makes a new value, and empty results (missing, `null`, `""` or
//! white space only, `[]`, `{}`) leave the field out, so no empty string is ever sent.

use super::condition::CompiledCondition;
use super::field_types::{self, FieldType};
use super::path::CompiledPath;
use super::payload::{Payload, value_is_empty};
use super::resolve::{PathTable, Slot};
use super::spec::{FieldMap, FieldRule, FieldSpec};
use super::transform::{CompileContext, CompiledTransform};
use super::warning::Warning;
use super::{CompileError, Pointer};
use indexmap::IndexMap;
use serde_json::Value;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;

/// Where paths point while a field is built: the whole event, the current item inside `each`, and
/// the event's plain paths resolved in one pass ([`PathTable::resolve`]; empty when not resolved).
#[derive(Clone, Copy)]
pub struct Scope<'a, 'r> {
    pub event: &'a Value,
    pub item: &'a Value,
    pub resolved: &'r [Option<&'a Value>],
}

impl<'a, 'r> Scope<'a, 'r> {
    /// The event, its paths walked one by one.
    pub fn event(event: &'a Value) -> Self {
        Self {
            event,
            item: event,
            resolved: &[],
        }
    }

    /// The event, with the values of its plain paths resolved by the table of its row group.
    pub fn resolved(event: &'a Value, resolved: &'r [Option<&'a Value>]) -> Self {
        Self {
            event,
            item: event,
            resolved,
        }
    }

    /// The first node `path` selects: from its slot when the event's paths are resolved and the
    /// path reads from the event (not from an `each` item), else by walking it.
    fn first(&self, path: &CompiledPath, slot: Option<Slot>) -> Option<&'a Value> {
        match slot.and_then(|s| self.resolved.get(s as usize)) {
            Some(found) if std::ptr::eq(self.item, self.event) => *found,
            _ => path.first(self.item),
        }
    }

    /// The value of `path` ([`Scope::first`]) when it is not empty (`null`, blank text, `[]`,
    /// `{}`).
    #[inline(always)]
    fn present(&self, path: &CompiledPath, slot: Option<Slot>) -> Option<&'a Value> {
        self.first(path, slot).filter(|v| !value_is_empty(v))
    }

    /// The first value of `paths` that is not empty.
    #[inline(always)]
    fn first_of(&self, paths: &[(CompiledPath, Option<Slot>)]) -> Option<&'a Value> {
        paths
            .iter()
            .filter_map(|(p, slot)| self.first(p, *slot))
            .find(|v| !value_is_empty(v))
    }
}

/// Which fields of an [`ObjectPlan`] got a value in one payload, one bit per field in plan order
/// ([`ObjectPlan::field_labels`]): fields of nested objects count one by one, an `each` as one.
/// Bits of several payloads of the same plan are merged with [`FieldBits::union`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldBits(SmallVec<[u64; 2]>);

impl FieldBits {
    fn set(&mut self, i: usize) {
        let word = i / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1u64 << (i % 64);
    }

    /// Whether field `i` got a value.
    pub fn has(&self, i: usize) -> bool {
        self.0
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// Adds the fields set in `other`.
    pub fn union(&mut self, other: &FieldBits) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine |= theirs;
        }
    }
}

/// How to build one field.
#[derive(Debug, Clone)]
pub struct FieldPlan {
    label: Arc<str>,
    source: Source,
    transforms: Box<[CompiledTransform]>,
    default: Option<Value>,
    /// Boxed: few fields have one, and every field plan is smaller without it.
    when: Option<Box<CompiledCondition>>,
    /// No `when`, no transforms, no default: the field is its source's value as found (set by
    /// [`FieldPlan::new`]). Most candidates of `first_of` and `all_of` are such bare paths.
    bare: bool,
    /// An `all_of` whose candidates are all paths without a condition or a default (set by
    /// [`FieldPlan::new`]): when none of them finds a value, the field is seen to be absent at a
    /// glance, with no call ([`FieldPlan::build`]).
    paths_only: bool,
    /// The type the platform takes at the field, when it types it: set at load for the fields of
    /// an object plan ([`compile_flat`]), not for candidates or an `each` (its items' own fields
    /// are typed).
    ty: Option<&'static FieldType>,
}

#[derive(Debug, Clone)]
enum Source {
    /// A path, with its slot in its row group's [`PathTable`] once interned.
    Path(CompiledPath, Option<Slot>),
    Const(Value),
    FirstOf(Box<[FieldPlan]>),
    /// A `first_of` whose candidates are all bare paths: tried in order without a plan each.
    FirstPath(Box<[(CompiledPath, Option<Slot>)]>),
    AllOf(Box<[FieldPlan]>),
    Each(CompiledPath, ObjectPlan),
}

/// Whether every candidate (each a path) finds no value. A loop of its own, inlined:
/// `Iterator::all` was left a call.
#[inline(always)]
fn all_find_nothing(candidates: &[FieldPlan], scope: Scope<'_, '_>) -> bool {
    for candidate in candidates {
        if !candidate.finds_nothing(scope) {
            return false;
        }
    }
    true
}

/// At most this many values of an `all_of` field are sent.
pub const ALL_OF_MAX: usize = 10;

/// How to build an object: its fields, in order.
#[derive(Debug, Clone, Default)]
pub struct ObjectPlan {
    entries: Box<[(Box<str>, Node)]>,
}

#[derive(Debug, Clone)]
enum Node {
    Field(FieldPlan),
    /// A field the platform types (its plan's `ty` is set): its values are checked. A node of its
    /// own, so that the other fields are built with no test of a type.
    Typed(FieldPlan),
    Object(ObjectPlan),
}

impl FieldPlan {
    /// Compiles one field spec; `label` is the payload field it builds, for warnings.
    pub fn compile(
        spec: &FieldSpec,
        label: &str,
        at: &Pointer,
        ctx: CompileContext,
    ) -> Result<Self, Vec<CompileError>> {
        match spec {
            FieldSpec::Path(p) => {
                let path = CompiledPath::compile(p).map_err(|m| vec![at.error(m)])?;
                Ok(Self::new(
                    label,
                    Source::Path(path, None),
                    [].into(),
                    None,
                    None,
                ))
            }
            FieldSpec::Rule(rule) => compile_rule(rule, label, at, ctx),
        }
    }

    fn new(
        label: &str,
        source: Source,
        transforms: Box<[CompiledTransform]>,
        default: Option<Value>,
        when: Option<CompiledCondition>,
    ) -> Self {
        let bare = transforms.is_empty() && default.is_none() && when.is_none();
        let paths_only = match &source {
            Source::AllOf(candidates) => candidates.iter().all(|c| {
                matches!(c.source, Source::Path(..)) && c.when.is_none() && c.default.is_none()
            }),
            _ => false,
        };
        Self {
            label: label.into(),
            source,
            transforms,
            default,
            when: when.map(Box::new),
            bare,
            paths_only,
            ty: None,
        }
    }

    /// Checks the value just pushed to `out` (by [`FieldPlan::build_into`]) against the field's
    /// type ([`field_types::check`]) where it is: converted, or taken out again with a warning,
    /// when it is of the wrong type. Whether the field keeps a value.
    #[inline(always)]
    fn keeps_pushed(
        &self,
        out: &mut Vec<(&str, Payload<'_>)>,
        warnings: &mut Vec<Warning>,
    ) -> bool {
        let (Some(&ty), Some((_, value))) = (self.ty, out.last_mut()) else {
            return true;
        };
        if field_types::takes_as_is(ty, value)
            || field_types::check(value, ty, &self.label, warnings)
        {
            return true;
        }
        out.pop();
        false
    }

    /// Builds the field's value, or `None` to leave it out. The commonest sources are settled
    /// right here, where the caller is, with no call to `build_rule`: a bare path, a
    /// path with transforms, and a `first_of` or `all_of` of paths that finds nothing.
    #[inline(always)]
    pub fn build<'a>(
        &'a self,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
    ) -> Option<Payload<'a>> {
        match &self.source {
            Source::Path(p, slot) if self.bare => scope.present(p, *slot).map(Payload::Ref),
            // Most such fields find nothing in most events (a matching key the shop does not
            // send): that is settled here too, with no call.
            Source::FirstPath(paths) if self.when.is_none() => match scope.first_of(paths) {
                Some(found) => self.finish_found(found, scope, warnings),
                None => self.default.as_ref().map(Payload::Ref),
            },
            // A path with transforms: its transforms applied with no call to `build_rule`.
            Source::Path(p, slot) if self.when.is_none() => match scope.present(p, *slot) {
                Some(found) => self.finish_found(found, scope, warnings),
                None => self.default.as_ref().map(Payload::Ref),
            },
            // The matching keys read `all_of` profile and event properties, which most events
            // do not hold: seen here when none holds a value.
            Source::AllOf(candidates)
                if self.paths_only
                    && self.when.is_none()
                    && all_find_nothing(candidates, scope) =>
            {
                self.default.as_ref().map(Payload::Ref)
            }
            _ => self.build_rule(scope, warnings),
        }
    }

    /// [`FieldPlan::build`], its value (when not empty) pushed to `out` under `key` (the object's
    /// fields, given `capacity` with the first: [`push_field`]); whether it got one. A bare path's
    /// value is pushed where it is found, not returned from `build` first.
    #[inline(always)]
    fn build_into<'a>(
        &'a self,
        key: &'a str,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
        out: &mut Vec<(&'a str, Payload<'a>)>,
        capacity: usize,
    ) -> bool {
        if let (Source::Path(p, slot), true) = (&self.source, self.bare) {
            return match scope.present(p, *slot) {
                Some(v) => {
                    push_field(out, capacity, key, Payload::Ref(v));
                    true
                }
                None => false,
            };
        }
        match self.build(scope, warnings) {
            Some(v) if !v.is_empty() => {
                push_field(out, capacity, key, v);
                true
            }
            _ => false,
        }
    }

    /// Whether a candidate that is a path finds no value (nothing, or an empty one).
    #[inline(always)]
    fn finds_nothing(&self, scope: Scope<'_, '_>) -> bool {
        match &self.source {
            // A path of several nodes may find a value past an empty first one.
            Source::Path(p, slot) if p.selects_one() => {
                scope.first(p, *slot).is_none_or(value_is_empty)
            }
            _ => false,
        }
    }

    /// [`FieldPlan::build`] of any field: its condition, source, transforms and default.
    #[inline(never)]
    fn build_rule<'a>(
        &'a self,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
    ) -> Option<Payload<'a>> {
        if let Some(when) = &self.when
            && !when.holds(scope.event)
        {
            return None;
        }
        let found = match &self.source {
            Source::AllOf(candidates) => {
                let all = self.all_of(candidates, scope, warnings);
                return all.or_else(|| self.default.as_ref().map(Payload::Ref));
            }
            Source::Path(p, slot) => scope.first(p, *slot).map(Payload::Ref),
            Source::Const(v) => Some(Payload::Ref(v)),
            Source::FirstOf(candidates) => candidates.iter().find_map(|c| c.build(scope, warnings)),
            Source::FirstPath(paths) => scope.first_of(paths).map(Payload::Ref),
            Source::Each(path, plan) => Some(Self::each(path, plan, scope, warnings)),
        };
        match found.filter(|v| !v.is_empty()) {
            Some(found) => self.finish(found, scope, warnings),
            None => self.default.as_ref().map(Payload::Ref),
        }
    }

    /// The field's value from what its source `found` (not empty): its transforms applied, else
    /// its default when they leave nothing.
    #[inline(never)]
    fn finish<'a>(
        &'a self,
        found: Payload<'a>,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
    ) -> Option<Payload<'a>> {
        let value = if self.transforms.is_empty() {
            Some(found)
        } else {
            self.transform(found, scope.event, warnings)
        };
        value.or_else(|| self.default.as_ref().map(Payload::Ref))
    }

    /// [`FieldPlan::finish`] of a value found in the event, taken by reference: with no
    /// transform, the value as it is, with no call; else through a call that gets the reference
    /// in a register (a `Payload` argument goes through memory, and reading it back can stall).
    #[inline(always)]
    fn finish_found<'a>(
        &'a self,
        found: &'a Value,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
    ) -> Option<Payload<'a>> {
        if self.transforms.is_empty() {
            return Some(Payload::Ref(found));
        }
        self.transform_found(found, scope.event, warnings)
    }

    /// The field's transforms applied to a value found in the event; its default when a transform
    /// leaves nothing or fails (with a warning).
    #[inline(never)]
    fn transform_found<'a>(
        &'a self,
        found: &'a Value,
        event: &Value,
        warnings: &mut Vec<Warning>,
    ) -> Option<Payload<'a>> {
        self.apply_transforms(Cow::Borrowed(found), event, warnings)
            .or_else(|| self.default.as_ref().map(Payload::Ref))
    }

    /// The type of every value the field gives, when known at load: its last transform's
    /// ([`CompiledTransform::gives`]), or its constant's when it has no transform, and then only if
    /// a default is of the same type. An `all_of` (which may give a list) and an `each` give none.
    fn gives(&self) -> Option<FieldType> {
        let made = match (&self.source, self.transforms.last()) {
            (Source::AllOf(_) | Source::Each(..), _) => return None,
            (_, Some(last)) => last.gives()?,
            (Source::Const(v), None) => FieldType::of_scalar(v)?,
            _ => return None,
        };
        let default = self.default.as_ref().map(FieldType::of_scalar);
        default.is_none_or(|d| d == Some(made)).then_some(made)
    }

    /// Settles the values the field gives as they are against the type `ty` the platform takes
    /// there, at load ([`field_types::settle_constant`]): its `const` when no transform changes it, and its
    /// `default`. `at` is the field's place in the file, for the error.
    fn settle_constants(&mut self, ty: FieldType, at: &Pointer) -> Result<(), CompileError> {
        if let (Source::Const(v), true) = (&mut self.source, self.transforms.is_empty()) {
            field_types::settle_constant(v, ty, &self.label)
                .map_err(|m| at.key("const").error(m))?;
        }
        if let Some(v) = &mut self.default {
            field_types::settle_constant(v, ty, &self.label)
                .map_err(|m| at.key("default").error(m))?;
        }
        Ok(())
    }

    /// Gives the paths this field reads from the event a slot in `table` (paths inside `each`
    /// read from its items and keep walking).
    fn intern_paths(&mut self, table: &mut PathTable) {
        match &mut self.source {
            Source::Path(path, slot) => *slot = table.intern(path),
            Source::FirstPath(paths) => {
                for (path, slot) in paths.iter_mut() {
                    *slot = table.intern(path);
                }
            }
            Source::FirstOf(candidates) | Source::AllOf(candidates) => {
                candidates.iter_mut().for_each(|c| c.intern_paths(table));
            }
            Source::Const(_) | Source::Each(..) => {}
        }
    }

    /// The object `plan` builds of each item `path` finds, as an array.
    fn each<'a>(
        path: &'a CompiledPath,
        plan: &'a ObjectPlan,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
    ) -> Payload<'a> {
        let mut items = Vec::new();
        path.for_each(scope.item, &mut |item| {
            let built = plan.build(
                Scope {
                    event: scope.event,
                    item,
                    resolved: scope.resolved,
                },
                warnings,
            );
            if !built.is_empty() {
                items.push(Payload::Object(built));
            }
        });
        Payload::Array(items)
    }

    /// Every candidate's values (arrays flattened), each through the field's transforms, without
    /// repeats, at most [`ALL_OF_MAX`]; one value as is, several as an array.
    fn all_of<'a>(
        &'a self,
        candidates: &'a [FieldPlan],
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
    ) -> Option<Payload<'a>> {
        let mut values: Vec<Payload<'a>> = Vec::new();
        for candidate in candidates {
            let found = match candidate.every_node(scope, warnings) {
                Some(nodes) => Payload::Array(nodes),
                None => match candidate.build(scope, warnings) {
                    Some(found) => found,
                    None => continue,
                },
            };
            let mut add = |item: Payload<'a>| {
                let Some(value) = self.transform(item, scope.event, warnings) else {
                    return;
                };
                if values.len() < ALL_OF_MAX && !values.iter().any(|v| v.same_json(&value)) {
                    values.push(value);
                }
            };
            match found {
                Payload::Array(items) => items.into_iter().for_each(add),
                Payload::Owned(Value::Array(items)) => {
                    items.into_iter().map(Payload::Owned).for_each(add);
                }
                Payload::Ref(Value::Array(items)) => items.iter().map(Payload::Ref).for_each(add),
                one => add(one),
            }
        }
        match values.len() {
            0 => None,
            1 => values.pop(),
            _ => Some(Payload::Array(values)),
        }
    }

    /// For an `all_of` candidate that is a path which may select several nodes (`[*]`, `.*`, a
    /// filter), the value of each node that is not empty, through the candidate's own transforms
    /// (its default when there is none); `None` for any other candidate, which gives one value.
    fn every_node<'a>(
        &'a self,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
    ) -> Option<Vec<Payload<'a>>> {
        let Source::Path(path, _) = &self.source else {
            return None;
        };
        if path.selects_one() {
            return None;
        }
        if let Some(when) = &self.when
            && !when.holds(scope.event)
        {
            return Some(Vec::new());
        }
        // At most a few times the values sent: a list of thousands is not hashed whole.
        let mut nodes = Vec::new();
        path.for_each(scope.item, &mut |v| {
            if !value_is_empty(v) && nodes.len() < 4 * ALL_OF_MAX {
                nodes.push(v);
            }
        });
        if nodes.is_empty() {
            return Some(self.default.iter().map(Payload::Ref).collect());
        }
        let each = nodes.into_iter();
        Some(
            each.filter_map(|v| self.finish_found(v, scope, warnings))
                .collect(),
        )
    }

    /// [`FieldPlan::apply_transforms`] to any payload: a built or owned one is made a `Value`
    /// first.
    fn transform<'a>(
        &'a self,
        found: Payload<'a>,
        event: &Value,
        warnings: &mut Vec<Warning>,
    ) -> Option<Payload<'a>> {
        let value: Cow<'a, Value> = match found {
            Payload::Ref(v) => Cow::Borrowed(v),
            other => Cow::Owned(other.to_value()),
        };
        self.apply_transforms(value, event, warnings)
    }

    /// The field's transforms applied in turn to `value`: `None` when one leaves nothing (or
    /// fails, with a warning naming the field).
    #[inline(always)]
    fn apply_transforms<'a>(
        &'a self,
        mut value: Cow<'a, Value>,
        event: &Value,
        warnings: &mut Vec<Warning>,
    ) -> Option<Payload<'a>> {
        for t in self.transforms.iter() {
            value = match t.apply(value, event) {
                Ok(Some(v)) if !value_is_empty(&v) => v,
                Ok(_) => return None,
                Err(message) => {
                    warnings.push(Warning {
                        field: self.label.clone(),
                        message,
                    });
                    return None;
                }
            };
        }
        Some(match value {
            Cow::Borrowed(v) => Payload::Ref(v),
            Cow::Owned(v) => Payload::Owned(v),
        })
    }
}

fn compile_rule(
    rule: &FieldRule,
    label: &str,
    at: &Pointer,
    ctx: CompileContext,
) -> Result<FieldPlan, Vec<CompileError>> {
    let sources = [
        rule.path.is_some(),
        rule.constant.is_some(),
        rule.first_of.is_some(),
        rule.all_of.is_some(),
        rule.each.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(vec![at.error(
            "give exactly one of `path`, `const`, `first_of`, `all_of` or `each`",
        )]);
    }
    if rule.fields.is_some() != rule.each.is_some() {
        return Err(vec![at.error(
            "`each` and `fields` go together: `each` picks the items, `fields` builds each one",
        )]);
    }
    let mut errors = Vec::new();
    let source = compile_source(rule, label, at, ctx, &mut errors);
    let when = match &rule.when {
        Some(c) => CompiledCondition::compile(c, &at.key("when")).map(Some),
        None => Ok(None),
    };
    match (source, when) {
        (Ok(source), Ok(when)) if errors.is_empty() => Ok(FieldPlan::new(
            label,
            source,
            rule.transform
                .iter()
                .map(|t| CompiledTransform::compile(t, ctx))
                .collect(),
            rule.default.clone(),
            when,
        )),
        (source, when) => {
            errors.extend(source.err().into_iter().flatten());
            errors.extend(when.err().into_iter().flatten());
            Err(errors)
        }
    }
}

/// The source of a field rule (`path`, `const`, `each`, `first_of` or `all_of`, exactly one of them,
/// checked by the caller). Errors of candidates go to `errors`, so that every one is reported.
fn compile_source(
    rule: &FieldRule,
    label: &str,
    at: &Pointer,
    ctx: CompileContext,
    errors: &mut Vec<CompileError>,
) -> Result<Source, Vec<CompileError>> {
    if let Some(p) = &rule.path {
        CompiledPath::compile(p)
            .map(|p| Source::Path(p, None))
            .map_err(|m| vec![at.key("path").error(m)])
    } else if let Some(c) = &rule.constant {
        Ok(Source::Const(c.clone()))
    } else if let (Some(each), Some(fields)) = (&rule.each, &rule.fields) {
        // Each item would be `{}`, which is never sent: the field could never be.
        if fields.is_empty() {
            return Err(vec![at.key("fields").error(
                "`each` needs at least one field: with none, every item is empty and the field \
                 is never sent",
            )]);
        }
        let path = CompiledPath::compile(each).map_err(|m| at.key("each").error(m));
        let plan = compile_object(fields, &format!("{label}[]."), &at.key("fields"), ctx);
        match (path, plan) {
            (Ok(path), Ok(plan)) => Ok(Source::Each(path, plan)),
            (path, plan) => Err(path
                .err()
                .into_iter()
                .chain(plan.err().into_iter().flatten())
                .collect()),
        }
    } else if let Some(candidates) = &rule.all_of {
        compile_candidates(candidates, "all_of", label, at, ctx, errors).map(Source::AllOf)
    } else {
        let candidates = rule.first_of.as_deref().unwrap_or_default();
        compile_candidates(candidates, "first_of", label, at, ctx, errors).map(first_of)
    }
}

/// A `first_of` source: [`Source::FirstPath`] when every candidate is a bare path (what it builds
/// is then the first non-empty value found, as [`FieldPlan::build`] of each would give).
fn first_of(candidates: Box<[FieldPlan]>) -> Source {
    if !candidates
        .iter()
        .all(|c| c.bare && matches!(c.source, Source::Path(..)))
    {
        return Source::FirstOf(candidates);
    }
    let paths = candidates
        .into_vec()
        .into_iter()
        .filter_map(|c| match c.source {
            Source::Path(p, slot) => Some((p, slot)),
            _ => None,
        })
        .collect();
    Source::FirstPath(paths)
}

/// The candidates of `first_of` or `all_of` (named `key`), at least one.
fn compile_candidates(
    candidates: &[FieldSpec],
    key: &str,
    label: &str,
    at: &Pointer,
    ctx: CompileContext,
    errors: &mut Vec<CompileError>,
) -> Result<Box<[FieldPlan]>, Vec<CompileError>> {
    let at = at.key(key);
    if candidates.is_empty() {
        return Err(vec![
            at.error(format!("`{key}` needs at least one candidate")),
        ]);
    }
    let mut plans = Vec::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        match FieldPlan::compile(c, label, &at.index(i), ctx) {
            Ok(p) => plans.push(p),
            Err(e) => errors.extend(e),
        }
    }
    Ok(plans.into())
}

/// The first ancestor of the field `label` (`properties.contents` of
/// `properties.contents.0.price`) that the platform types as no object: a dotted key would build an
/// object there, which the platform refuses.
fn typed_ancestor<'l>(
    types: &'static [(&'static str, FieldType)],
    label: &'l str,
) -> Option<(&'l str, &'static FieldType)> {
    label.match_indices('.').find_map(|(end, _)| {
        let ancestor = &label[..end];
        match FieldType::at(types, ancestor) {
            None | Some(FieldType::Object(_)) => None,
            Some(ty) => Some((ancestor, ty)),
        }
    })
}

/// What the platform takes, as a message says it.
fn describe(ty: &FieldType) -> &'static str {
    match ty {
        FieldType::Text => "text",
        FieldType::Number => "a number",
        FieldType::Object(_) => "an object",
        FieldType::List(_) => "a list",
    }
}

/// Why the target `key` names no field, if it has an empty name between dots
/// (`properties..value`, `.x`, `x.`).
fn empty_part(key: &str) -> Option<String> {
    key.split('.')
        .any(str::is_empty)
        .then(|| format!("`{key}` is not a field name: dotted names need a name between dots"))
}

/// Why the target `key` (`label` with the prefix of its `each`) names no field the payload can
/// have, if it names none: an empty name between dots ([`empty_part`]), a bracket
/// (`properties.contents[0].price` would build a key
/// `contents[0]`, which no platform knows: a target names keys between dots, and a list is built
/// with `each`), or a dotted key that builds an object inside a field the platform types
/// otherwise ([`typed_ancestor`]).
fn target_refusal(key: &str, label: &str, ctx: CompileContext) -> Option<String> {
    if let Some(refusal) = empty_part(key) {
        return Some(refusal);
    }
    if key.contains(['[', ']']) {
        return Some(format!(
            "`{key}` is not a field name: a target names its keys between dots, without brackets \
             (`properties.value`); a list is built with `each`"
        ));
    }
    let (ancestor, ty) = ctx.field_types.and_then(|t| typed_ancestor(t, label))?;
    Some(format!(
        "`{key}` builds an object at `{ancestor}`, where the platform takes {}: map `{ancestor}` \
         itself{}",
        describe(ty),
        match ty {
            FieldType::List(_) => " (a list is built with `each`)",
            _ => "",
        }
    ))
}

/// Compiles every field of `fields` (errors placed under `at`), keeping their order; each field
/// the platform types gets its type (`ctx.field_types`).
pub fn compile_flat(
    fields: &FieldMap,
    label_prefix: &str,
    at: &Pointer,
    ctx: CompileContext,
) -> Result<IndexMap<String, FieldPlan>, Vec<CompileError>> {
    let mut out = IndexMap::with_capacity(fields.len());
    let mut errors = Vec::new();
    for (key, spec) in fields {
        let label = format!("{label_prefix}{key}");
        if let Some(refusal) = target_refusal(key, &label, ctx) {
            errors.push(at.key(key).error(refusal));
            continue;
        }
        match FieldPlan::compile(spec, &label, &at.key(key), ctx) {
            Ok(mut plan) => {
                if !matches!(plan.source, Source::Each(..)) {
                    let ty = ctx.field_types.and_then(|t| FieldType::at(t, &label));
                    if let Some(ty) = ty
                        && let Err(e) = plan.settle_constants(*ty, &at.key(key))
                    {
                        errors.push(e);
                        continue;
                    }
                    // Settled at load when the plan always gives that type.
                    plan.ty = ty.filter(|ty| plan.gives() != Some(**ty));
                }
                out.insert(key.clone(), plan);
            }
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn compile_object(
    fields: &FieldMap,
    label_prefix: &str,
    at: &Pointer,
    ctx: CompileContext,
) -> Result<ObjectPlan, Vec<CompileError>> {
    let flat = compile_flat(fields, label_prefix, at, ctx)?;
    ObjectPlan::from_flat(flat).map_err(|m| vec![at.error(m)])
}

/// A tree under construction: dotted keys split into nested objects.
enum Tree {
    Field(FieldPlan),
    Object(IndexMap<String, Tree>),
}

impl ObjectPlan {
    /// Builds the tree of a flat map of dotted keys. The message of an error names the clashing key.
    pub fn from_flat(flat: IndexMap<String, FieldPlan>) -> Result<Self, String> {
        let mut root: IndexMap<String, Tree> = IndexMap::new();
        for (key, plan) in flat {
            if let Some(refusal) = empty_part(&key) {
                return Err(refusal);
            }
            let parts: Vec<&str> = key.split('.').collect();
            let (last, parents) = parts.split_last().unwrap_or((&"", &[]));
            let mut node = &mut root;
            for (depth, part) in parents.iter().enumerate() {
                let entry = node
                    .entry((*part).to_owned())
                    .or_insert_with(|| Tree::Object(IndexMap::new()));
                node = match entry {
                    Tree::Object(children) => children,
                    Tree::Field(_) => {
                        return Err(format!(
                            "`{key}` is inside `{}`, which is already a field of its own",
                            parts[..=depth].join(".")
                        ));
                    }
                };
            }
            if matches!(node.get(*last), Some(Tree::Object(_))) {
                return Err(format!("`{key}` is both a field and an object of fields"));
            }
            node.insert((*last).to_owned(), Tree::Field(plan));
        }
        Ok(Self::from_tree(root))
    }

    fn from_tree(tree: IndexMap<String, Tree>) -> Self {
        let entries = tree
            .into_iter()
            .map(|(k, t)| {
                let node = match t {
                    Tree::Field(f) if f.ty.is_some() => Node::Typed(f),
                    Tree::Field(f) => Node::Field(f),
                    Tree::Object(children) => Node::Object(Self::from_tree(children)),
                };
                (k.into_boxed_str(), node)
            })
            .collect();
        Self { entries }
    }

    /// The payload field of each of the plan's fields, in order: the fields of nested objects
    /// (`user.email`, `user.phone`), an `each` as one field. [`FieldBits`] are numbered so.
    pub fn field_labels(&self) -> Vec<Arc<str>> {
        let mut labels = Vec::new();
        self.collect_labels(&mut labels);
        labels
    }

    fn collect_labels(&self, labels: &mut Vec<Arc<str>>) {
        for (_, node) in self.entries.iter() {
            match node {
                Node::Field(f) | Node::Typed(f) => labels.push(f.label.clone()),
                Node::Object(o) => o.collect_labels(labels),
            }
        }
    }

    /// Gives the paths its fields read from the event a slot in `table`.
    pub fn intern_paths(&mut self, table: &mut PathTable) {
        for (_, node) in self.entries.iter_mut() {
            match node {
                Node::Field(f) | Node::Typed(f) => f.intern_paths(table),
                Node::Object(o) => o.intern_paths(table),
            }
        }
    }

    /// Builds the object's fields; empty when no field yields a value.
    pub fn build<'a>(
        &'a self,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
    ) -> Vec<(&'a str, Payload<'a>)> {
        self.build_marking(scope, warnings, 0, None)
    }

    /// [`ObjectPlan::build`], with room for `room` more fields beyond the plan's own, so that the
    /// caller can add that many without growing the vector. With `present`, also sets the bit of
    /// each field that got a value (numbered as [`ObjectPlan::field_labels`] lists them), while
    /// building: no second pass over the payload.
    pub fn build_with_room<'a>(
        &'a self,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
        room: usize,
        present: Option<&mut FieldBits>,
    ) -> Vec<(&'a str, Payload<'a>)> {
        let mut marks = present.map(|bits| Marks { bits, next: 0 });
        self.build_marking(scope, warnings, room, marks.as_mut())
    }

    /// [`ObjectPlan::build_with_room`], numbering this plan's fields on from `marks.next`.
    fn build_marking<'a>(
        &'a self,
        scope: Scope<'a, '_>,
        warnings: &mut Vec<Warning>,
        room: usize,
        mut marks: Option<&mut Marks<'_>>,
    ) -> Vec<(&'a str, Payload<'a>)> {
        let mut out = Vec::new();
        let capacity = self.entries.len() + room;
        for (key, node) in self.entries.iter() {
            // Each branch pushes its own value, so none is carried out of the `match`: one copy
            // through the stack fewer, and such a copy, read back in wider pieces than it was
            // written, can stall (BENCHMARKS.md, round twenty-four).
            match node {
                Node::Field(f) => {
                    let got = f.build_into(key, scope, warnings, &mut out, capacity);
                    Marks::field(&mut marks, got);
                }
                Node::Typed(f) => {
                    let got = f.build_into(key, scope, warnings, &mut out, capacity)
                        && f.keeps_pushed(&mut out, warnings);
                    Marks::field(&mut marks, got);
                }
                Node::Object(o) => {
                    let fields = o.build_marking(scope, warnings, 0, marks.as_deref_mut());
                    if !fields.is_empty() {
                        push_field(&mut out, capacity, key, Payload::Object(fields));
                    }
                }
            }
        }
        out
    }
}

/// Pushes a field to an object's fields, allocating them (`capacity`) with the first: objects
/// that never get a field allocate nothing.
#[inline(always)]
fn push_field<'a>(
    out: &mut Vec<(&'a str, Payload<'a>)>,
    capacity: usize,
    key: &'a str,
    value: Payload<'a>,
) {
    if out.is_empty() {
        out.reserve_exact(capacity);
    }
    out.push((key, value));
}

/// Where [`ObjectPlan::build_with_room`] records which fields got a value: the bits, and the
/// number of the next field of the plan.
struct Marks<'b> {
    bits: &'b mut FieldBits,
    next: usize,
}

impl Marks<'_> {
    /// Counts the next field (when fields are marked), setting its bit when it `got` a value.
    #[inline(always)]
    fn field(marks: &mut Option<&mut Marks<'_>>, got: bool) {
        if let Some(marks) = marks.as_deref_mut() {
            if got {
                marks.bits.set(marks.next);
            }
            marks.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: FieldType = FieldType::Text;
    const NUMBER: FieldType = FieldType::Number;
    const TYPES: &[(&str, FieldType)] = &[
        ("n1", NUMBER),
        ("n2", NUMBER),
        ("n3", NUMBER),
        ("t1", TEXT),
        ("t2", TEXT),
        ("t3", TEXT),
        ("t4", TEXT),
        ("t5", TEXT),
    ];

    /// The object plan of the fields in `yaml`, the platform typing them as `types` (none when
    /// `None`).
    fn plan_of(yaml: &str, types: Option<&'static [(&'static str, FieldType)]>) -> ObjectPlan {
        let fields: FieldMap = serde_yaml::from_str(yaml).expect("fields YAML");
        let ctx = CompileContext {
            field_types: types,
            ..CompileContext::default()
        };
        let flat = compile_flat(&fields, "", &Pointer::root(), ctx).expect("compiles");
        ObjectPlan::from_flat(flat).expect("a tree")
    }

    #[test]
    fn a_field_whose_plan_always_gives_its_type_is_settled_at_load() {
        let plan = plan_of(
            r#"
n1: { path: $.a, transform: [number] }
n2: $.a
n3: { path: $.a, transform: [number], default: "7" }
t1: { const: "x" }
t2: { const: 5 }
t3: { all_of: [$.a], transform: [sha256] }
t4: { path: $.a, transform: [trim] }
t5: { path: $.a, transform: [trim, sha256] }
untyped: $.a
"#,
            Some(TYPES),
        );
        let typed: Vec<&str> = plan
            .entries
            .iter()
            .filter(|(_, node)| matches!(node, Node::Typed(_)))
            .map(|(key, _)| &**key)
            .collect();
        // A constant or default of another type that converts is converted at load (`t2`, `n3`'s
        // default), so its field is settled too.
        assert_eq!(typed, ["n2", "t3", "t4"]);
    }

    #[test]
    fn each_kind_of_field_is_pushed_checked_and_marked_as_it_builds() {
        const INNER: &[(&str, FieldType)] = &[("num_bad", NUMBER)];
        const KINDS: &[(&str, FieldType)] = &[
            ("num", NUMBER),
            ("num_text", NUMBER),
            ("num_bad", NUMBER),
            ("label", TEXT),
            ("o", FieldType::Object(INNER)),
        ];
        let plan = plan_of(
            r#"
num: $.n
num_text: $.n_text
num_bad: $.obj
label: $.n
blank: $.blank
trimmed: { path: $.blank, transform: [trim] }
with_default: { path: $.missing, default: "d" }
o.num_bad: $.obj
o2.x: $.missing
"#,
            Some(KINDS),
        );
        let event = serde_json::json!({"n": 7, "n_text": "12.5", "obj": {"a": 1}, "blank": "  "});
        let mut warnings = Vec::new();
        let mut bits = FieldBits::default();
        let built = plan.build_with_room(Scope::event(&event), &mut warnings, 2, Some(&mut bits));
        assert!(built.capacity() >= plan.entries.len() + 2);
        assert_eq!(
            Payload::Object(built).to_value(),
            serde_json::json!({"num": 7, "num_text": 12.5, "label": "7", "with_default": "d"})
        );
        // A value of the wrong type is taken out with a warning; an object left with no field
        // (`o`), or that never got one (`o2`), is left out.
        let warned: Vec<&str> = warnings.iter().map(|w| &*w.field).collect();
        assert_eq!(warned, ["num_bad", "o.num_bad"]);
        let labels = plan.field_labels();
        let marked: Vec<&str> = (0..labels.len())
            .filter(|i| bits.has(*i))
            .map(|i| &*labels[i])
            .collect();
        assert_eq!(marked, ["num", "num_text", "label", "with_default"]);
    }

    #[test]
    fn all_of_takes_every_node_of_a_path_that_selects_several() {
        let plan = plan_of(
            r#"
phones: { all_of: ["$.phones[*]", "$.p2", { path: "$.more.*", transform: [upper] }] }
only: { all_of: ["$.phones[*]"], default: none }
"#,
            None,
        );
        let built = |event: serde_json::Value| {
            let mut warnings = Vec::new();
            Payload::Object(plan.build(Scope::event(&event), &mut warnings)).to_value()
        };
        use serde_json::json;
        // An empty first node does not hide those after it.
        let event = json!({"phones": ["", "a", "b", "a"], "p2": "c", "more": {"x": "d", "y": ""}});
        assert_eq!(
            built(event),
            json!({"phones": ["a", "b", "c", "D"], "only": ["a", "b"]})
        );
        let none = json!({"phones": ["", null], "more": {}});
        assert_eq!(built(none), json!({"only": "none"}));
    }

    #[test]
    fn all_of_paths_that_find_nothing_give_the_default_as_all_of_does() {
        let plan = plan_of(
            r#"
quick: { all_of: ["$.a", { path: "$.b", transform: [upper] }], default: none }
slow: { all_of: ["$.a", { const: "c" }] }
"#,
            None,
        );
        let Node::Field(quick) = &plan.entries[0].1 else {
            panic!("a field");
        };
        assert!(quick.paths_only);
        let built = |event: serde_json::Value| {
            let mut warnings = Vec::new();
            Payload::Object(plan.build(Scope::event(&event), &mut warnings)).to_value()
        };
        use serde_json::json;
        for nothing in [
            json!({}),
            json!({"a": "", "b": null}),
            json!({"a": [], "b": "  "}),
        ] {
            assert_eq!(built(nothing), json!({"quick": "none", "slow": "c"}));
        }
        assert_eq!(
            built(json!({"a": "x", "b": "y"})),
            json!({"quick": ["x", "Y"], "slow": ["x", "c"]})
        );
        assert_eq!(built(json!({"b": "y"})), json!({"quick": "Y", "slow": "c"}));
    }
}
