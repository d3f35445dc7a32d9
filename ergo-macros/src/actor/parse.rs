//! Parsing: the `#[actor(...)]` options and the impl block into raw syntax. No rules: only a
//! piece that is not an option at all is reported here.

use proc_macro2::TokenStream;
use syn::{Attribute, ImplItem, ItemImpl};

use super::model::Role;
use crate::internals::option::{self, RawOption};
use crate::internals::Ctxt;

/// `#[actor(options)] input`, as written.
pub(crate) struct RawActor {
    pub(crate) options: Vec<RawOption>,
    pub(crate) input: RawInput,
}

/// What `#[actor]` is on.
pub(crate) enum RawInput {
    /// An impl block, with our attributes taken off its items (it is emitted as the user's
    /// code), and those attributes per item, in order.
    Impl {
        item: Box<ItemImpl>,
        roles: Vec<Vec<(Role, Attribute)>>,
    },
    /// Anything else, as written.
    Other(TokenStream),
}

/// What an option looks like, for a piece that is not one.
const OPTION: &str =
    "an `#[actor]` option: `remote`, `mailbox = N`, `msg = Name`, `api = Name` or `crate = \"path\"`";

pub(crate) fn actor(cx: &mut Ctxt, args: TokenStream, input: TokenStream) -> RawActor {
    let options = option::parse_list(cx, args, OPTION);
    let input = match syn::parse2::<ItemImpl>(input.clone()) {
        Ok(mut item) => {
            let roles = item.items.iter_mut().map(take_roles).collect();
            RawInput::Impl {
                item: Box::new(item),
                roles,
            }
        }
        Err(_) => RawInput::Other(input),
    };
    RawActor { options, input }
}

/// Removes our attributes from an item of the impl block and returns them.
fn take_roles(item: &mut ImplItem) -> Vec<(Role, Attribute)> {
    let attrs = match item {
        ImplItem::Fn(f) => &mut f.attrs,
        ImplItem::Const(c) => &mut c.attrs,
        ImplItem::Type(t) => &mut t.attrs,
        ImplItem::Macro(m) => &mut m.attrs,
        _ => return Vec::new(),
    };
    let mut roles = Vec::new();
    attrs.retain(|a| match Role::of_attr(a) {
        Some(role) => {
            roles.push((role, a.clone()));
            false
        }
        None => true,
    });
    roles
}
