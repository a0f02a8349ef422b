// Which master of a Redis Cluster owns a key, from the cluster client's own slot map, so that
// dc_server's batch (src/cache/redis_batch) can send each master its part in one encoded buffer on
// that master's connection (./encoded_commands) instead of one routed ioredis command per request,
// which cost the cluster rows two to three times the CPU of a standalone Redis per request.
//
// The map is the client's: it follows the client's view of the slots, which MOVED replies and
// the periodic refresh correct. A key whose master is unknown, or whose connection is not ready
// and writable now, is the caller's to route through the client (a node connection made by the
// cluster client queues while it connects, and what it queues would leave on a later connection).

import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';

/** The master that owns `key`'s slot with its connection ready, or undefined. */
export type MasterOf = (key: Buffer) => Redis | undefined;

/** A lookup of masters by key for one batch, made from `cluster`'s slot map and masters now. */
export function mastersOf(cluster: Cluster): MasterOf {
  const byNodeKey = new Map<string, Redis>();
  for (const node of cluster.nodes('master')) {
    const stream = node.stream as Redis['stream'] | undefined;
    // The slot map names a node "host:port", as the client's connection pool does.
    if (node.status === 'ready' && stream?.writable === true) byNodeKey.set(`${node.options.host}:${node.options.port}`, node);
  }
  return (key) => {
    const owner = slotOwner(cluster, key);
    return owner === undefined ? undefined : byNodeKey.get(owner);
  };
}

/** The master that owns `key`'s slot, "host:port" as the client's slot map names it, or undefined. */
export function slotOwner(cluster: Cluster, key: Buffer): string | undefined {
  return cluster.slots[calculateSlot(key)]?.[0];
}

/** Whether `error` is one the cluster client recovers from by sending the command elsewhere or
 * again (a moved slot, a migration, a failover under way, a master's connection lost): the
 * request then goes through the client, which follows it. */
export function clusterReroutes(error: Error): boolean {
  const word = error.message.split(' ', 1)[0];
  return word === 'MOVED' || word === 'ASK' || word === 'TRYAGAIN' || word === 'CLUSTERDOWN' || error.message === 'Connection is closed.';
}
