// Every workflow the workers register. Workflow code runs in Temporal's deterministic sandbox:
// it imports only @temporalio/workflow and types.
export { evaluateDataset } from './evaluate-dataset';
