export { startNode, type RunningNode, type StartOptions } from './node.js';
export { parseNodeConfig, NodeConfigSchema, type NodeConfig, type NodeConfigInput } from './config.js';
