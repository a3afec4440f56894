// No traffic at all; HANDLE=1 adds a handleSummary that writes nothing.
export const options = { iterations: 3 };

export default function () {}

export const handleSummary = __ENV.HANDLE ? function () { return {}; } : undefined;
