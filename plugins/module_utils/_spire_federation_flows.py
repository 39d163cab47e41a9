# -*- coding: utf-8 -*-
# Copyright: (c) 2026, trustroot.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flows of spire_bundle and spire_federation over the SPIRE client: show a bundle (the server's own or a
foreign one), set or delete a foreign trust domain's bundle when its authorities differ, converge federation
relationships and refresh their bundles. Bundle formats and the relationship plan are in _spire_federation."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.trustroot.ops.plugins.module_utils._spire_cli import (
    MAX_BATCH, SpireError, check_results, chunked, server_trust_domain)
from ansible_collections.trustroot.ops.plugins.module_utils._errors import InputError
from ansible_collections.trustroot.ops.plugins.module_utils._spire_federation import (
    authorities_from_proto, authorities_summary, bundle_pem, bundle_spiffe, bundle_view,
    current_relationships, desired_relationships, federation_diff, plan_federation, relationships_after,
    relationships_data, same_authorities)


def read_foreign(cli, trust_domain):
    try:
        return cli.run_json(['bundle', 'list', '-id', 'spiffe://%s' % trust_domain])
    except SpireError as exc:
        if exc.grpc_code == 'NotFound':
            return None
        raise


def describe(result):
    return (result.get('bundle') or {}).get('trust_domain') or result.get('trust_domain') or 'bundle'


def bundle_text(params):
    """The desired bundle as text, loaded from the bundle or bundle_path option; raises InputError."""
    if params['bundle_path']:
        try:
            with open(params['bundle_path'], 'rb') as handle:
                return handle.read().decode('utf-8')
        except (IOError, OSError) as exc:
            raise InputError('bundle_path %s cannot be read: %s' % (params['bundle_path'], exc.strerror or exc))
        except UnicodeDecodeError:
            raise InputError('bundle_path %s is not UTF-8 text' % params['bundle_path'])
    value = params['bundle']
    if isinstance(value, (dict, list)):
        if params['format'] != 'spiffe':
            raise InputError('bundle is a dictionary, which only format=spiffe accepts')
        return json.dumps(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError('bundle must be non-empty text (or a dictionary for format=spiffe)')
    return value


def view_result(proto):
    view = bundle_view(proto or {})
    return dict(x509_authorities=view['x509_authorities'], jwt_authorities=view['jwt_authorities'],
                sequence_number=view['sequence_number'])


def empty_view():
    return dict(x509_authorities=[], jwt_authorities=[], sequence_number=0)


def show_bundle(cli, own, trust_domain, fmt):
    """The result of state=show: the own bundle, or the foreign one of ``trust_domain``."""
    own_td = own.get('trust_domain')
    proto = own if trust_domain is None or trust_domain == own_td else read_foreign(cli, trust_domain)
    result = dict(changed=False, trust_domain=trust_domain or own_td, found=proto is not None,
                  bundle=None, **(view_result(proto) if proto else empty_view()))
    if proto is not None:
        result['bundle'] = bundle_pem(proto) if fmt == 'pem' else json.dumps(bundle_spiffe(proto), indent=4,
                                                                             sort_keys=False)
    return result


def converge_bundle(cli, params, trust_domain, desired, check_mode=False, diff=False):
    """Set (state=present, ``desired`` authorities) or delete (state=absent) the foreign bundle of ``trust_domain``
    when it differs; the result holds the bundle as it is afterwards."""
    present = params['state'] == 'present'
    current = read_foreign(cli, trust_domain)
    before = authorities_from_proto(current) if current is not None else None
    changed = not same_authorities(before, desired) if present else current is not None
    result = dict(changed=changed, trust_domain=trust_domain, found=current is not None)
    if diff:
        result['diff'] = {'before': {'trust_domain': trust_domain, 'authorities': authorities_summary(before)},
                          'after': {'trust_domain': trust_domain,
                                    'authorities': authorities_summary(desired if present else None)}}
    final = current
    if changed and not check_mode:
        if present:
            answer = cli.run_json(['bundle', 'set', '-id', 'spiffe://%s' % trust_domain,
                                   '-format', params['format']], data=bundle_text(params))
            check_results(answer.get('results') or [], describe)
            final = read_foreign(cli, trust_domain)
        else:
            answer = cli.run_json(['bundle', 'delete', '-id', 'spiffe://%s' % trust_domain, '-mode', params['mode']])
            check_results(answer.get('results') or [], describe)
            final = None
    result.update(view_result(final) if final is not None else empty_view())
    return result


# --- spire_federation ---------------------------------------------------------------------------------------

def load_bundles(items):
    """Relationship dicts with trust_domain_bundle loaded from trust_domain_bundle_path; raises InputError."""
    out = []
    for index, item in enumerate(items):
        item = dict(item)
        if item.get('trust_domain_bundle') is not None and item.get('trust_domain_bundle_path'):
            raise InputError('relationships[%d]: trust_domain_bundle and trust_domain_bundle_path are mutually '
                             'exclusive' % index)
        path = item.pop('trust_domain_bundle_path', None)
        if path:
            try:
                with open(path, 'rb') as handle:
                    item['trust_domain_bundle'] = handle.read().decode('utf-8')
            except (IOError, OSError) as exc:
                raise InputError('relationships[%d].trust_domain_bundle_path %s cannot be read: %s'
                                 % (index, path, exc.strerror or exc))
            except UnicodeDecodeError:
                raise InputError('relationships[%d].trust_domain_bundle_path %s is not UTF-8 text' % (index, path))
        bundle = item.get('trust_domain_bundle')
        if isinstance(bundle, (dict, list)) and item.get('trust_domain_bundle_format', 'spiffe') == 'pem':
            raise InputError('relationships[%d].trust_domain_bundle is a dictionary, which only '
                             'trust_domain_bundle_format=spiffe accepts' % index)
        if bundle is not None and not isinstance(bundle, (dict, list, str)):
            raise InputError('relationships[%d].trust_domain_bundle must be text or a dictionary' % index)
        out.append(item)
    return out


def describe_relationship(result):
    rel = result.get('federation_relationship') or {}
    return rel.get('trust_domain') or result.get('trust_domain') or 'relationship'


def refresh_bundles(cli, desired):
    """``federation refresh`` of every desired relationship: [{'trust_domain', 'bundle_changed'}]."""
    refreshed = []
    for rel in desired:
        before = read_foreign(cli, rel['trust_domain'])
        cli.run_json(['federation', 'refresh', '-id', rel['trust_domain']])
        fetched = read_foreign(cli, rel['trust_domain'])
        if before is None or fetched is None:
            changed = (before is None) != (fetched is None)
        else:
            changed = not same_authorities(authorities_from_proto(before), authorities_from_proto(fetched))
        refreshed.append({'trust_domain': rel['trust_domain'], 'bundle_changed': changed})
    return refreshed


def converge_federation(cli, items, managed, prune=False, refresh=False, check_mode=False, diff=False):
    """Create, update and (with ``prune``, among ``managed``) delete relationships so the server holds ``items``;
    a SpireError carries the result reached so far in ``results``."""
    result = dict(changed=False, created=[], updated=[], deleted=[], bootstrapped=[], refreshed=[])
    try:
        own_td = server_trust_domain(cli)
        desired = desired_relationships(items, own_trust_domain=own_td)
        current = current_relationships(cli.run_json(['federation', 'list']))
        plan = plan_federation(desired, current, prune=prune, managed=managed)
        after = relationships_after(current, plan)
        result.update(created=[r['trust_domain'] for r in plan['create']],
                      updated=[r['trust_domain'] for r in plan['update']],
                      deleted=list(plan['delete']), bootstrapped=list(plan['bootstrap']), relationships=after,
                      changed=bool(plan['create'] or plan['update'] or plan['delete']))
        if diff:
            result['diff'] = federation_diff(current, after)
        if check_mode:
            return result
        for verb in ('create', 'update'):
            for batch in chunked(plan[verb], MAX_BATCH):
                answer = cli.run_json(['federation', verb, '-data', '-'], data=relationships_data(batch))
                check_results(answer.get('results') or [], describe_relationship)
        for td in plan['delete']:
            answer = cli.run_json(['federation', 'delete', '-id', td])
            check_results(answer.get('results') or [], describe_relationship)
        if refresh:
            result['refreshed'] = refresh_bundles(cli, desired)
            result['changed'] = result['changed'] or any(r['bundle_changed'] for r in result['refreshed'])
    except SpireError as exc:
        exc.results = dict(result, failures=exc.failures)
        raise
    return result
