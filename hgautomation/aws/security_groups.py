"""Per-owner security groups: SSH (and optionally RDP) only from the owner's address."""

from __future__ import annotations

import ipaddress

from hgautomation import console, errors
from hgautomation.aws import tags as T
from hgautomation.aws.session import AWSSession, translate_errors

KIND_PORTS = {"linux": (22,), "windows": (22,)}
RDP_PORT = 3389

Rule = tuple[int, int, str]  # (from port, to port, cidr)


def caller_cidr(timeout: float = 10.0) -> str:
    """The caller's public IPv4 address as /32, asked from a public echo service."""
    import requests

    url = "https://checkip.amazonaws.com"
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        address = ipaddress.ip_address(response.text.strip())
    except (requests.RequestException, ValueError) as exc:
        raise errors.ConfigurationError(
            f"cannot find this machine's public address via {url}: {type(exc).__name__}",
            hint="pass --ingress-cidr ADDRESS/32") from exc
    return f"{address}/{address.max_prefixlen}"


def _current_rules(group: dict) -> set[Rule]:
    rules: set[Rule] = set()
    for perm in group.get("IpPermissions", []):
        if perm.get("IpProtocol") != "tcp":
            # Anything not tcp is not something we put there: mark it for removal.
            rules.add((-1, -1, f"proto:{perm.get('IpProtocol')}"))
            continue
        for r in perm.get("IpRanges", []):
            rules.add((perm["FromPort"], perm["ToPort"], r["CidrIp"]))
        for r in perm.get("Ipv6Ranges", []):
            rules.add((perm["FromPort"], perm["ToPort"], r["CidrIpv6"]))
        for g in perm.get("UserIdGroupPairs", []):
            rules.add((perm["FromPort"], perm["ToPort"], f"sg:{g.get('GroupId')}"))
    return rules


def _permissions(rules: set[Rule], group: dict | None = None) -> list[dict]:
    perms = []
    for from_port, to_port, cidr in sorted(rules):
        if cidr.startswith("proto:"):
            proto = cidr.split(":", 1)[1]
            perms.extend(p for p in (group or {}).get("IpPermissions", [])
                         if p.get("IpProtocol") == proto)
            continue
        perm: dict = {"IpProtocol": "tcp", "FromPort": from_port, "ToPort": to_port}
        if cidr.startswith("sg:"):
            perm["UserIdGroupPairs"] = [{"GroupId": cidr[3:]}]
        elif ":" in cidr:
            perm["Ipv6Ranges"] = [{"CidrIpv6": cidr}]
        else:
            perm["IpRanges"] = [{"CidrIp": cidr, "Description": "hgautomation owner address"}]
        perms.append(perm)
    return perms


def find_group(session: AWSSession, name: str) -> dict | None:
    with translate_errors(f"describe security group {name}"):
        groups = session.client("ec2").describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    return groups[0] if groups else None


def ensure_security_group(session: AWSSession, kind: str, owner: str, ingress_cidr: str,
                          *, rdp: bool = False) -> str:
    """Create or update ``hg-<kind>-dev-1-<owner>``; returns its id. No call mutates if in sync."""
    con = console.get()
    ec2 = session.client("ec2")
    name = T.security_group_name(kind, owner)
    ports = KIND_PORTS[kind] + ((RDP_PORT,) if rdp and kind == "windows" else ())
    wanted = {(p, p, ingress_cidr) for p in ports}
    group = find_group(session, name)
    if group is None:
        con.info(f"security group {name}: creating (ingress {ingress_cidr})")
        with translate_errors(f"create security group {name}"):
            group_id = ec2.create_security_group(
                GroupName=name, Description=f"hgautomation {kind} dev hosts of {owner}",
                TagSpecifications=T.tag_specs("security-group", T.ours(owner)))["GroupId"]
        current: set[Rule] = set()
        group = {"GroupId": group_id}
    else:
        group_id = group["GroupId"]
        if not T.is_ours(T.tag_dict(group.get("Tags")), owner):
            raise errors.AWSError(f"security group {name} ({group_id}) exists but is not "
                                  "tagged as ours", hint="delete it or choose another --owner")
        current = _current_rules(group)
    stale, missing = current - wanted, wanted - current
    # The new rule first: a failure between the two calls never leaves the group
    # without ingress.
    if missing:
        con.info(f"security group {name}: allowing {', '.join(str(p) for p in ports)}/tcp "
                 f"from {ingress_cidr}")
        with translate_errors(f"authorize ingress on {name}"):
            ec2.authorize_security_group_ingress(GroupId=group_id,
                                                 IpPermissions=_permissions(missing))
    others = sorted({cidr for _, _, cidr in stale
                     if not cidr.startswith(("sg:", "proto:"))} - {ingress_cidr})
    if others:
        # One owner used from two machines (or an address that changed): each run
        # narrows ingress to its own address, cutting the other off its instances.
        con.warn(f"security group {name} allowed {', '.join(others)}, not this machine's "
                 f"{ingress_cidr}: another machine using owner {owner!r}, or a changed "
                 "address; from now on only this address reaches the instances of "
                 f"{owner!r} (give each machine its own --owner to keep both)")
    if stale:
        con.info(f"security group {name}: removing {console.plural(len(stale), 'outdated rule')}")
        with translate_errors(f"revoke ingress on {name}"):
            ec2.revoke_security_group_ingress(GroupId=group_id,
                                              IpPermissions=_permissions(stale, group))
    return group_id
