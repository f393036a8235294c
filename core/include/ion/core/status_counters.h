#pragma once
// The counters IoN shows, each declared once, here. A name is also the field of the status
// message that carries it (proto/ion/v1/ion.proto), where its options say how it is shown: its
// /api/status key, its /metrics family and help. Every copy between layers is made from these
// lists, so adding a counter is a line here, its proto field, and its increment:
//   broker slot Counter -> BrokerNodeStats / TapStats field -> v1::NodeStatus / v1::TapStatus
//   NodeStats field -> v1::NodeHealth (heartbeats) -> the broker's NodeHealthStats
// X(name) for each; comments say what is counted.

// Per topology node, counted at the broker (broker/src/slots.h NodeSlot).
#define ION_BROKER_NODE_COUNTERS(X)                                                     \
  X(registrations)         /* Hellos accepted */                                         \
  X(timeouts)              /* times the node went silent beyond the heartbeat timeout */  \
  X(batches_in)            /* accepted from the node */                                  \
  X(events_in)                                                                           \
  X(batches_out)           /* sent to the node */                                        \
  X(events_out)                                                                          \
  X(dropped_batches)       /* for the node, dropped: outbound ring full or node away */   \
  X(dropped_events)                                                                      \
  X(lost_upstream_batches) /* sequence gaps on batches from the node */                  \
  X(reordered_batches)                                                                   \
  X(source_restarts)       /* a new source epoch */                                      \
  X(rejected_batches)      /* messages from the node refused by validation */

// Per recorder (tap), counted at the broker (TapSlot).
#define ION_BROKER_TAP_COUNTERS(X)                    \
  X(batches_out)                                      \
  X(events_out)                                       \
  X(dropped_batches) /* the tap's ring was full */    \
  X(dropped_events)

// What a node counts about delivery and reports in every heartbeat (NodeStats -> NodeHealth).
#define ION_NODE_HEALTH_COUNTERS(X)                                                          \
  X(received_events)  /* handed to the driver */                                             \
  X(lost_events)      /* known lost on the way (sequence gaps) */                             \
  X(late_events)      /* arrived after their deadline */                                      \
  X(late_dropped)     /* ... and dropped by the connection's policy */                        \
  X(emitted_events)   /* emitted by the driver */                                             \
  X(dropped_events)   /* dropped in the node's send queue */                                  \
  X(playout_overrun)  /* handed to the device beyond deadline + precision (flagged late) */
