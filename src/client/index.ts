export { GroveClient, type ClientOptions, type ConsoleReadOptions } from './client.js';
export { ApiError, UnreachableError } from './errors.js';
export { followEvents, type FollowOptions } from './events.js';
export { openConsole, type ConsoleSocket } from './console-socket.js';
export type * from './types.js';
