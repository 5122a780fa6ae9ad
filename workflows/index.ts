// Every workflow the workers register. Workflow code runs in Temporal's deterministic sandbox:
// it imports only @temporalio/workflow, types and the pure core/util modules eslint allows.
export { evaluateDataset } from './evaluate-dataset';
export { evaluateSuite } from './evaluate-suite';
