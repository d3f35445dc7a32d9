//! Expansion: a newtype around `Supervisor` whose `new()` builds the tree, plus the impls that
//! make it an actor (`HostsSupervisor` and the runtime's `__supervisor_actor!`), written from
//! the checked model. No rule is checked here.
//!
//! Generated code names only absolute paths (`::ergo::__private::…` or the `#![crate = "…"]`
//! override's, and `::core::…`). Each child goes through a hidden `__ergo_child` function whose bound carries a
//! `#[diagnostic::on_unimplemented]` note and whose call is spanned on the user's constructor,
//! so a constructor that is not an actor is one error, on it, that says what to do.

use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};

use super::model::{Child, Shutdown, Spec, Start, Tree};

pub(crate) fn generate(tree: &Tree) -> TokenStream {
    let krate = tree.krate();
    let p = quote!(#krate::__private);
    let name = &tree.name;
    let vis = &tree.vis;
    let name_str = syn::ext::IdentExt::unraw(name).to_string();
    let docs = docs(tree, &name_str);
    let lints = &tree.lints;
    let build = build(&tree.spec, &p);
    // The note "required by this bound" points at the tree's name, not the whole invocation.
    let child_bound = quote_spanned!(name.span()=> __ErgoChildActor);
    let not_an_actor =
        format!("`{{Self}}` is not an actor, so it cannot be a child of `{name_str}`");
    quote! {
        #(#docs)*
        #(#lints)*
        #[allow(unreachable_pub)]
        #vis struct #name(#p::Supervisor);

        const _: () = {
            #[diagnostic::on_unimplemented(
                message = #not_an_actor,
                label = "this makes a `{Self}`; a child's constructor must make an actor",
                note = "make `{Self}` an actor with `#[actor]` on its `impl` block, or declare it with `supervisor!`"
            )]
            trait __ErgoChildActor {
                type Actor: #p::Actor;
                fn into_actor(self) -> Self::Actor;
            }

            #[diagnostic::do_not_recommend]
            #[automatically_derived]
            impl<A: #p::Actor> __ErgoChildActor for A {
                type Actor = A;
                fn into_actor(self) -> A {
                    self
                }
            }

            /// `ChildSpec::new`, with the bound checked on the user's constructor.
            #[allow(dead_code)]
            fn __ergo_child<A, F>(id: &'static str, mut make: F) -> #p::ChildSpec
            where
                A: #child_bound,
                F: ::core::ops::FnMut() -> A + ::core::marker::Send + 'static,
            {
                #p::ChildSpec::new(id, move || __ErgoChildActor::into_actor(make()))
            }

            impl #name {
                /// Builds the tree. Nothing runs yet: the supervisor starts its children, in
                /// order, when it is spawned (`node.spawn(..)`) or started as a child of
                /// another supervisor.
                #[allow(unreachable_pub)]
                #vis fn new() -> Self {
                    #name(#build)
                }
            }

            #[automatically_derived]
            impl ::core::default::Default for #name {
                fn default() -> Self {
                    Self::new()
                }
            }

            #[automatically_derived]
            impl ::core::fmt::Debug for #name {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_tuple(#name_str).field(&self.0).finish()
                }
            }

            #[automatically_derived]
            impl #p::HostsSupervisor for #name {
                fn supervisor_mut(&mut self) -> &mut #p::Supervisor {
                    &mut self.0
                }
            }

            #p::supervisor_actor!(#name, #name_str);
        };
    }
}

/// The user's doc comments (or a default summary), then the tree as a list, so the rendered
/// docs always match the declaration.
fn docs(tree: &Tree, name: &str) -> Vec<TokenStream> {
    let mut out: Vec<TokenStream> = tree.docs.iter().map(|d| quote!(#d)).collect();
    let mut lines = Vec::new();
    if out.is_empty() {
        lines.push(format!(
            " The `{name}` supervision tree (declared with `supervisor!`)."
        ));
    }
    lines.push(String::new());
    lines.push(" # Tree".to_owned());
    lines.push(String::new());
    lines.push(format!(" {}", header_text(&tree.spec)));
    child_lines(&tree.spec, 0, &mut lines);
    out.extend(lines.iter().map(|l| quote!(#[doc = #l])));
    out
}

fn child_lines(spec: &Spec, depth: usize, lines: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    for child in spec.valid_children() {
        let restart = child.restart.expect("a valid child has a restart type");
        let mut line = format!(" {indent}- `{}`: {}", child.id(), restart.word());
        if let Some(name) = &child.name {
            line.push_str(&format!(", registered as \"{}\"", name.value()));
        }
        if child.significant.is_some() {
            line.push_str(", significant");
        }
        match &child.shutdown {
            Some(Shutdown::Timeout(d)) => line.push_str(&format!(", shutdown {}", d.text)),
            Some(Shutdown::BrutalKill) => line.push_str(", shutdown `brutal_kill`"),
            Some(Shutdown::Infinity) => line.push_str(", shutdown `infinity`"),
            None => {}
        }
        match &child.start {
            Some(Start::Inline(inner)) => {
                line.push_str(&format!(", a supervisor: {}", header_text(inner)));
                lines.push(line);
                child_lines(inner, depth + 1, lines);
            }
            _ => lines.push(line),
        }
    }
}

/// `` `one_for_one`, at most 3 restarts in 5s: ``
fn header_text(spec: &Spec) -> String {
    let intensity = spec.intensity.unwrap_or(1);
    let period = spec.period.as_ref().map_or("5s", |p| &p.text);
    let mut text = format!(
        "`{}`, at most {intensity} restart{} in {period}",
        spec.strategy.word(),
        if intensity == 1 { "" } else { "s" }
    );
    if let Some(auto) = spec.auto_shutdown {
        text.push_str(&format!(", `auto_shutdown = {}`", auto.word()));
    }
    text.push_str(if spec.valid_children().next().is_none() {
        ", no children."
    } else {
        ":"
    });
    text
}

/// `Supervisor::new(..)` with the header's settings and one `.child(..)` per child.
fn build(spec: &Spec, p: &TokenStream) -> TokenStream {
    let strategy = spec.strategy.variant();
    let intensity = (spec.intensity.is_some() || spec.period.is_some()).then(|| {
        let n = Literal::u32_unsuffixed(spec.intensity.unwrap_or(1));
        let ms = Literal::u64_unsuffixed(spec.period.as_ref().map_or(5_000, |p| p.millis));
        quote!(.intensity(#n, ::core::time::Duration::from_millis(#ms)))
    });
    let auto_shutdown = spec.auto_shutdown.map(|a| {
        let variant = a.variant();
        quote!(.auto_shutdown(#p::AutoShutdown::#variant))
    });
    let children = spec.valid_children().map(|c| child(c, p));
    quote! {
        #p::Supervisor::new(#p::Strategy::#strategy)
            #intensity
            #auto_shutdown
            #(.child(#children))*
    }
}

fn child(c: &Child, p: &TokenStream) -> TokenStream {
    let id = syn::LitStr::new(&c.id(), c.id.span());
    let make = match c.start.as_ref().expect("a valid child has a constructor") {
        Start::Expr(e) => {
            // The call is spanned from the constructor's first token to its last, so a
            // constructor that is not an actor is reported on exactly it.
            let mut tokens = e.to_token_stream().into_iter();
            let first = tokens.next().map_or_else(Span::call_site, |t| t.span());
            let last = tokens.last().map_or(first, |t| t.span());
            let mut args = Group::new(Delimiter::Parenthesis, quote!(#id, move || #e));
            args.set_span(last);
            quote_spanned!(first=> __ergo_child #args)
        }
        Start::Inline(spec) => {
            let inner = build(spec, p);
            quote!(__ergo_child(#id, move || #inner))
        }
    };
    let restart = c
        .restart
        .expect("a valid child has a restart type")
        .variant();
    let shutdown = c.shutdown.as_ref().map(|s| {
        let s = match s {
            Shutdown::Timeout(d) => {
                let ms = Literal::u64_unsuffixed(d.millis);
                quote!(Timeout(::core::time::Duration::from_millis(#ms)))
            }
            Shutdown::BrutalKill => quote!(BrutalKill),
            Shutdown::Infinity => quote!(Infinity),
        };
        quote!(.shutdown(#p::Shutdown::#s))
    });
    let register = c.name.as_ref().map(|n| quote!(.register(#n)));
    let significant = c.significant.map(|_| quote!(.significant(true)));
    quote! {
        #make
            .restart(#p::Restart::#restart)
            #shutdown
            #register
            #significant
    }
}
