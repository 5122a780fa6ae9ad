// Both workers in one process, for local use (`npm run worker`).
import { main } from './run-workers';

main(['cpu', 'gpu']);
