"""``automl token create|list|revoke``: manage API tokens directly in the server's store."""

from __future__ import annotations

import argparse
import time

from automl.service.server import add_store_flags, open_store


def add_parser(sub) -> None:
    p = sub.add_parser("token", help="create, list or revoke API tokens of `automl serve`")
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=type(p))
    create = verbs.add_parser("create", help="a new token for USER (printed once)")
    create.add_argument("user")
    create.add_argument("--admin", action="store_true", help="the user sees every experiment")
    create.add_argument("--init", action="store_true", help="create the store if --root/--db "
                        "holds none yet (otherwise refused: a mistyped --root would print a "
                        "token no server accepts)")
    listing = verbs.add_parser("list", help="tokens (id, user, created, revoked), never the tokens")
    revoke = verbs.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", type=int)
    for q in (create, listing, revoke):
        add_store_flags(q)
    p.set_defaults(func=main_token)


def main_token(args: argparse.Namespace) -> int:
    from automl.service import auth

    store = open_store(args, create=args.verb == "create" and args.init)
    if args.verb == "create":
        print(auth.issue(store, args.user, admin=args.admin))
    elif args.verb == "list":
        for row in auth.list_tokens(store):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created"]))
            state = "revoked" if row["revoked"] else "active"
            print(f"{row['id']:>4}  {row['user']:<20} {'admin' if row['admin'] else 'user ':<6} "
                  f"{when}  {state}")
    else:
        auth.revoke(store, args.id)
        print(f"token {args.id} revoked")
    return 0
